from glmserve.cli.main import main

main()
