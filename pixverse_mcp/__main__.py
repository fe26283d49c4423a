"""`python -m pixverse_mcp`: the same as the `pixverse-mcp` command."""

if __name__ == "__main__":
    import gc

    gc.disable()  # until the server is built (see cli.main): importing cli is a part of starting

    from pixverse_mcp.cli import main

    main()
