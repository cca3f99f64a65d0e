from gat_tui.cli import main

main()
