#!/usr/bin/env sh
# Add pixverse-mcp to Claude Code (for every project of this user; use --scope project to share it in .mcp.json).
claude mcp add pixverse --scope user --env AIMLAPI_API_KEY="<your AI/ML API key>" -- uvx aimlapi-pixverse-mcp
