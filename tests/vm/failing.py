# A test whose assertion fails: the run must exit non-zero and name line 6.
start_all()
machine.wait_for_unit("multi-user.target")
machine.succeed("true")

machine.succeed("echo about to fail; exit 42")
