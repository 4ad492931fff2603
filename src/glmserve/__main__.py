from glmserve.cli import main

main()
