"""An MCP client written with the Python SDK (mcp 2.x): lists the tools of an MCP endpoint and
calls one, over streamable HTTP or legacy SSE. Prints one JSON line: {"tools": [...], "result": ...}.

usage: interop_client.py (http|sse) URL TOOL JSON_ARGUMENTS
"""
import asyncio
import json
import sys

from mcp.client.session import ClientSession
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client


async def main(transport, url, tool, arguments):
    connect = streamable_http_client(url) if transport == "http" else sse_client(url)
    async with connect as streams:
        read, write = streams[0], streams[1]
        async with ClientSession(read, write) as session:
            await session.initialize()
            tools = await session.list_tools()
            result = await session.call_tool(tool, arguments)
            print(json.dumps({
                "tools": [t.name for t in tools.tools],
                "result": result.model_dump(mode="json", by_alias=True, exclude_none=True),
            }))


asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])))
