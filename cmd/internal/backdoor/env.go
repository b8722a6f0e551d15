package backdoor

// CommandEnv is put before every command the host runs: it gives commands
// the working directory and environment of nixpkgs' test driver, whose
// backdoor does `cd /tmp` and exports DISPLAY=:0.0 and an empty PAGER,
// whatever the guest's own backdoor script set up. It runs inside the
// command's subshell, so it changes nothing in the shell itself; /tmp is
// entered per command, so a tmpfs mounted on /tmp after the shell started
// is the one commands see.
const CommandEnv = "cd /tmp 2>/dev/null || cd /; export DISPLAY=:0.0 PAGER=\n"
