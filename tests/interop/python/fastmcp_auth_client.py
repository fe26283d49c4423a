"""FastMCP's `Client` connecting over Streamable HTTP with a bearer token (none when absent): prints what it raises
when the server refuses it, the error a FastMCP application shows."""

from __future__ import annotations

import asyncio
import sys

from common import report
from fastmcp import Client


async def main() -> None:
    url, token = sys.argv[1], (sys.argv[2] if len(sys.argv) > 2 else None)
    try:
        async with Client(url, auth=token, timeout=30) as client:
            await client.list_tools()
        report(connected=True)
    except Exception as exc:  # what it raises is what an application shows
        report(connected=False, error=type(exc).__name__, message=str(exc))


if __name__ == "__main__":
    asyncio.run(main())
