"""`python -m pixverse_mcp`: the same as the `pixverse-mcp` command."""

from pixverse_mcp.cli import main

if __name__ == "__main__":
    main()
