"""The P1 baseline: a bare MCPServer with one trivial tool, started over stdio."""

from mcp.server import MCPServer

server: MCPServer = MCPServer("bare")


@server.tool()
def echo(text: str) -> str:
    """Return the text unchanged."""
    return text


if __name__ == "__main__":
    server.run("stdio")
