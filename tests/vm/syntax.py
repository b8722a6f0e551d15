# A script with a syntax error on line 4: reported before any machine starts.
start_all()

machine.succeed("true"
