package backdoor

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Preamble is the bash code the host sends once after the marker. It defines
// three functions in the guest shell and makes no other change to it:
//
//   - __dt_init ID: makes a private temporary directory (in $TMPDIR, /run,
//     /dev/shm or /tmp, the first that works) holding a fifo that the shell
//     keeps open read-write, so that a `read -t` on it blocks for exactly its
//     timeout; answers "DT ID ready BASH_VERSION" (or "DT ID fail REASON").
//   - __dt_run ID TIMEOUT COMMAND: runs COMMAND as a background job (with job
//     control on just for that fork, so it gets its own process group) in a
//     subshell with `set -euo pipefail`, no positional parameters, stdin from
//     /dev/null and stdout into the file o.ID, with SIGTTIN and SIGTTOU
//     ignored (the job is not in the terminal's foreground process group:
//     reading /dev/tty fails with EIO instead of stopping the job, and
//     setting terminal modes works). When TIMEOUT (seconds, may be
//     fractional) is not 0 a watchdog subshell waits on the fifo for at most
//     TIMEOUT and kills the job's process group when nobody cancelled it; the
//     shell cancels it by writing ID into the fifo once the job ended. Then it
//     replies (see __dt_reply), truncates o.ID, and every 100 commands removes
//     the old output files. The fast path (no timeout, empty or small
//     output) runs no external program: one fork for the command, one more for
//     the watchdog.
//   - __dt_reply: the answer frame
//     "\nDT ID STATUS TIMEDOUT r LEN\n<LEN raw bytes>\nDT ID end 0\n" when the
//     output has no NUL byte and is shorter than 64 KiB (read by the `read`
//     builtin, no fork; under TCG that is cheaper than running base64 up to
//     about that size), else
//     "\nDT ID STATUS TIMEDOUT b -\n<base64 -w 0 of the file>\nDT ID end RC\n"
//     where RC is base64's exit status. TIMEDOUT is 1 when the watchdog fired.
//
// Everything the functions print goes to the shell's stdout (hvc0); nothing
// else writes there: commands and the watchdog have their own stdin and
// stdout, and stderr stays on the serial console.
const Preamble = `__dt_init() {
	local b
	__dt_d=
	for b in ${TMPDIR:+"$TMPDIR"} /run /dev/shm /tmp; do
		[ -d "$b" ] && [ -w "$b" ] || continue
		__dt_d=$(mktemp -d "$b/distrotest.XXXXXX" 2>/dev/null) && break
	done
	if [ -z "$__dt_d" ]; then
		printf '\nDT %s fail cannot create a temporary directory\n' "$1"
		return
	fi
	if ! mkfifo -m 600 "$__dt_d/w" || ! exec {__dt_w}<>"$__dt_d/w"; then
		printf '\nDT %s fail cannot create a fifo in %s\n' "$1" "$__dt_d"
		return
	fi
	__dt_n=0
	printf '\nDT %s ready %s\n' "$1" "$BASH_VERSION"
}
__dt_run() {
	local __dt_i=$1 __dt_t=$2 __dt_c=$3 __dt_o="$__dt_d/o.$1" __dt_p __dt_k= __dt_s __dt_x=0 __dt_r
	set -m
	( trap '' TTIN TTOU; set +m -euo pipefail --; eval "$__dt_c" ) </dev/null >"$__dt_o" {__dt_w}>&- &
	__dt_p=$!
	set +m
	if [ "$__dt_t" != 0 ]; then
		(
			while read -r -t "$__dt_t" -u "$__dt_w" __dt_r; do
				[ "$__dt_r" = "$__dt_i" ] && exit 0
			done
			kill -KILL -- "-$__dt_p"
			exit 3
		) </dev/null >/dev/null 2>&1 &
		__dt_k=$!
	fi
	wait "$__dt_p"
	__dt_s=$?
	if [ -n "$__dt_k" ]; then
		printf '%s\n' "$__dt_i" >&"$__dt_w"
		wait "$__dt_k" || __dt_x=1
	fi
	__dt_reply "$__dt_i" "$__dt_s" "$__dt_x" "$__dt_o"
	: >"$__dt_o"
	(( ++__dt_n % 100 )) || rm -f -- "$__dt_d"/o.*
}
__dt_reply() {
	local LC_ALL=C __dt_v=
	if IFS= read -r -d '' -n 65536 __dt_v <"$4"; then
		printf '\nDT %s %d %d b -\n' "$1" "$2" "$3"
		base64 -w 0 <"$4"
		printf '\nDT %s end %d\n' "$1" "$?"
	else
		printf '\nDT %s %d %d r %d\n%s\nDT %s end 0\n' "$1" "$2" "$3" "${#__dt_v}" "$__dt_v" "$1"
	fi
}
`

// TimeoutStatus is the status Run reports for a command the guest killed
// because it exceeded its timeout, the exit status of GNU timeout(1), which
// the NixOS test driver uses.
const TimeoutStatus = 124

// Quote returns s as a single bash word: single-quoted, each single quote in
// s written as: close the quotes, a backslash-escaped quote, reopen them.
// Every byte but NUL survives it unchanged, newlines included.
func Quote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// formatTimeout renders a timeout in seconds for `read -t`, "0" for none.
func formatTimeout(d time.Duration) string {
	if d <= 0 {
		return "0"
	}
	ms := d.Milliseconds()
	if ms == 0 {
		ms = 1
	}
	return fmt.Sprintf("%d.%03d", ms/1000, ms%1000)
}

// initLine is the line that runs __dt_init after the preamble.
func initLine(id string) string {
	return "__dt_init " + id + "\n"
}

// runLine is the line the host sends to run one command (after CommandEnv).
func runLine(id, command string, timeout time.Duration) (string, error) {
	if strings.IndexByte(command, 0) >= 0 {
		return "", errors.New("command contains a NUL byte")
	}
	return "__dt_run " + id + " " + formatTimeout(timeout) + " " + Quote(CommandEnv+command) + "\n", nil
}

// header is the first line of a reply frame, after "DT ID ".
type header struct {
	status   int
	timedOut bool
	base64   bool
	length   int // raw payload length; -1 for base64
}

// parseHeader parses "STATUS TIMEDOUT r LEN" or "STATUS TIMEDOUT b -".
func parseHeader(line string) (header, error) {
	f := strings.Fields(line)
	if len(f) != 4 {
		return header{}, fmt.Errorf("malformed reply header %q", line)
	}
	st, err := strconv.Atoi(f[0])
	if err != nil || st < 0 || st > 255 {
		return header{}, fmt.Errorf("malformed exit status in reply header %q", line)
	}
	h := header{status: st, length: -1}
	switch f[1] {
	case "0":
	case "1":
		h.timedOut = true
	default:
		return header{}, fmt.Errorf("malformed timeout flag in reply header %q", line)
	}
	switch f[2] {
	case "r":
		n, err := strconv.Atoi(f[3])
		if err != nil || n < 0 {
			return header{}, fmt.Errorf("malformed length in reply header %q", line)
		}
		h.length = n
	case "b":
		if f[3] != "-" {
			return header{}, fmt.Errorf("malformed reply header %q", line)
		}
		h.base64 = true
	default:
		return header{}, fmt.Errorf("unknown encoding in reply header %q", line)
	}
	return h, nil
}

// parseTrailer checks "DT ID end RC" and returns RC.
func parseTrailer(line, id string) (int, error) {
	rest, ok := strings.CutPrefix(line, "DT "+id+" end ")
	if !ok {
		return 0, fmt.Errorf("malformed reply trailer %q", line)
	}
	rc, err := strconv.Atoi(rest)
	if err != nil {
		return 0, fmt.Errorf("malformed reply trailer %q", line)
	}
	return rc, nil
}

// snippet quotes at most 200 bytes of b for a log line.
func snippet(b []byte) string {
	const max = 200
	if len(b) > max {
		return strconv.Quote(string(b[:max])) + "..."
	}
	return strconv.Quote(string(b))
}

// lastIndexTail returns how many trailing bytes of b must be kept so that a
// needle of length n split across two reads is still found.
func lastIndexTail(b []byte, n int) int {
	if n <= 1 {
		return 0
	}
	if len(b) < n-1 {
		return len(b)
	}
	return n - 1
}
