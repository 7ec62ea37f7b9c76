from mlscale.cli.main import main

main()
