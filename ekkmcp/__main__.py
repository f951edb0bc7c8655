from ekkmcp.cli import main

main()
