from support_mcp.cli import main

main()
