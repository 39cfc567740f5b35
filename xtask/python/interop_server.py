"""An MCP server written with the Python SDK (mcp 2.x), for vMCP's interop checks."""
from mcp.server.mcpserver import MCPServer

mcp = MCPServer("py-interop")


@mcp.tool()
def multiply(a: int, b: int) -> int:
    """Multiplies two integers."""
    return a * b


@mcp.resource("py://motto")
def motto() -> str:
    """A fixed text."""
    return "interop works"


@mcp.prompt()
def haiku(topic: str) -> str:
    """Asks for a haiku."""
    return f"Write a haiku about {topic}."


if __name__ == "__main__":
    mcp.run("stdio")
