# OCI check (issue 12): a Debian 13 disk that went through a registry as a
# KubeVirt containerDisk was pulled, patched and booted; its backdoor answers.
start_all()
t.assertEqual(machine.succeed(". /etc/os-release && echo $ID $VERSION_ID").strip(), "debian 13")
status, out = machine.execute("echo from the containerDisk; exit 4")
t.assertEqual((status, out), (4, "from the containerDisk\n"))
machine.succeed("systemctl is-active distrotest-backdoor.service")
machine.shutdown()
