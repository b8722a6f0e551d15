# The script of the interactive test: run_tests() at the prompt runs it.
machine.wait_for_unit("multi-user.target")
machine.succeed("touch /tmp/run-tests-ran")
print("run_tests-finished-" + machine.succeed("echo $((40 + 2))").strip())
