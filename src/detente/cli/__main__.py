from detente.cli.app import main

main()
