package backdoor

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Preamble is the bash code the host sends once after the marker. It defines
// four functions in the guest shell and makes no other change to it:
//
//   - __dt_init ID ENC: makes a private directory for command output, in the
//     first of $DISTROTEST_BACKDOOR_TMPFS (a tmpfs the image's backdoor
//     script mounted for this purpose alone), $TMPDIR, /run, /dev/shm, /tmp
//     where that works, holding a fifo that the shell keeps open read-write,
//     so that a `read -t` on it blocks for exactly its timeout. ENC is how
//     large outputs travel: r raw (a flow-controlled virtio port), b base64
//     (a terminal). It answers "DT ID ready CAP BASH_VERSION DIR" where CAP
//     is the size in bytes of the backdoor's own tmpfs, 0 when the directory
//     is on a file system others use too (or "DT ID fail REASON").
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
//     the old output files. The fast path (no timeout, empty output) runs no
//     external program: one fork for the command, one more for the watchdog.
//   - __dt_reply: the answer frame
//     "\nDT ID STATUS TIMEDOUT ENC LEN CRC\n<payload>\nDT ID end RC [CRC]\n".
//     LEN and CRC are the output's byte count and POSIX cksum(1) CRC. ENC r:
//     the payload is the LEN raw bytes; ENC b: `head -c LEN | base64 -w 0`.
//     An output shorter than 64 KiB without NUL bytes is sent from a shell
//     variable (the `read` builtin, no fork) after one cksum run; an empty
//     one runs nothing. A large output on a raw channel is sent by `dd
//     bs=32k` (a virtio port takes at most 32 KiB per write) while cksum
//     runs beside it: its header has CRC "-" and the CRC comes in the
//     trailer. Only the first LEN bytes are sent and checksummed, so a
//     background process that keeps appending to the output after the
//     command ended cannot make the frame disagree with itself: cksum reads
//     the file itself (no pipe), and when the length it saw is not LEN the
//     first LEN bytes are summed again through head. RC is the
//     sender's exit status. ENC e (cksum or stat failed) and f (the shared
//     file system holding the output is full) come with an empty payload.
//     TIMEDOUT is 1 when the watchdog fired.
//   - __dt_sync ID: answers "DT ID sync"; the host sends it to find the end
//     of a reply it could not parse.
//   - __dt_resume ID: the ready answer of __dt_init, with the directory and
//     fifo it made (__dt_init ends with it); the host sends it to a shell restored from a snapshot, which
//     has the functions and the directory already (programs started after a
//     restore cost most: TCG translates them anew).
//
// Everything the functions print goes to the shell's stdout (the shell
// device); nothing else writes there: commands and the watchdog have their
// own stdin and stdout, and stderr stays on the serial console.
const Preamble = `__dt_init() {
	local b
	__dt_d= __dt_cap=0 __dt_e=$2
	for b in ${DISTROTEST_BACKDOOR_TMPFS:+"$DISTROTEST_BACKDOOR_TMPFS"} ${TMPDIR:+"$TMPDIR"} /run /dev/shm /tmp; do
		[ -d "$b" ] && [ -w "$b" ] || continue
		__dt_d=$(mktemp -d "$b/distrotest.XXXXXX" 2>/dev/null) && break
	done
	if [ -z "$__dt_d" ]; then
		printf '\nDT %s fail cannot create a directory for command output (tried $DISTROTEST_BACKDOOR_TMPFS, $TMPDIR, /run, /dev/shm, /tmp)\n' "$1"
		return
	fi
	if ! mkfifo -m 600 "$__dt_d/w" || ! exec {__dt_w}<>"$__dt_d/w"; then
		printf '\nDT %s fail cannot create a fifo in %s\n' "$1" "$__dt_d"
		return
	fi
	if [ -n "$DISTROTEST_BACKDOOR_TMPFS" ] && [ "$b" = "$DISTROTEST_BACKDOOR_TMPFS" ] &&
		__dt_cap=$(stat -f -c '%b %S' -- "$b"); then
		__dt_cap=$(( ${__dt_cap% *} * ${__dt_cap#* } ))
	else
		__dt_cap=0
	fi
	__dt_n=0
	__dt_resume "$1"
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
	local LC_ALL=C __dt_v= __dt_c __dt_l __dt_r __dt_k
	if [ "$__dt_cap" = 0 ] && __dt_v=$(stat -f -c %f -- "$__dt_d" 2>/dev/null) && [ "$__dt_v" = 0 ]; then
		printf '\nDT %s %d %d f 0 0\n\nDT %s end 0\n' "$1" "$2" "$3" "$1"
		return
	fi
	if [ ! -s "$4" ]; then
		printf '\nDT %s %d %d r 0 4294967295\n\nDT %s end 0\n' "$1" "$2" "$3" "$1"
		return
	fi
	if ! IFS= read -r -N 65536 __dt_v <"$4"; then
		# Shorter than 64 KiB: from the variable when it has no NUL byte.
		if ! __dt_c=$(cksum <"$4"); then
			printf '\nDT %s %d %d e 0 0\n\nDT %s end 1\n' "$1" "$2" "$3" "$1"
			return
		fi
		__dt_l=${__dt_c##* }
		if (( ${#__dt_v} == __dt_l )); then
			printf '\nDT %s %d %d r %s %s\n%s\nDT %s end 0\n' "$1" "$2" "$3" "$__dt_l" "${__dt_c%% *}" "$__dt_v" "$1"
			return
		fi
	elif [ "$__dt_e" = r ]; then
		# Large, on a raw channel: checksummed while it is sent.
		if ! __dt_l=$(stat -c %s -- "$4"); then
			printf '\nDT %s %d %d e 0 0\n\nDT %s end 1\n' "$1" "$2" "$3" "$1"
			return
		fi
		cksum <"$4" >"$__dt_d/c" &
		__dt_k=$!
		printf '\nDT %s %d %d r %s -\n' "$1" "$2" "$3" "$__dt_l"
		dd if="$4" bs=32k count="$__dt_l" iflag=count_bytes status=none
		__dt_r=$?
		__dt_c=
		wait "$__dt_k" && read -r __dt_c <"$__dt_d/c" || __dt_r=1
		if [ "$__dt_r" = 0 ] && [ "${__dt_c##* }" != "$__dt_l" ]; then
			# The file grew while cksum read it: sum the bytes sent.
			__dt_c=$(head -c "$__dt_l" <"$4" | cksum) || __dt_r=1
		fi
		printf '\nDT %s end %d %s\n' "$1" "$__dt_r" "${__dt_c%% *}"
		return
	elif ! __dt_c=$(cksum <"$4"); then
		printf '\nDT %s %d %d e 0 0\n\nDT %s end 1\n' "$1" "$2" "$3" "$1"
		return
	fi
	__dt_l=${__dt_c##* }
	if [ "$__dt_e" = r ]; then
		printf '\nDT %s %d %d r %s %s\n' "$1" "$2" "$3" "$__dt_l" "${__dt_c%% *}"
		dd if="$4" bs=32k count="$__dt_l" iflag=count_bytes status=none
		printf '\nDT %s end %d\n' "$1" "$?"
	else
		printf '\nDT %s %d %d b %s %s\n' "$1" "$2" "$3" "$__dt_l" "${__dt_c%% *}"
		head -c "$__dt_l" <"$4" | base64 -w 0
		__dt_r=("${PIPESTATUS[@]}")
		printf '\nDT %s end %d\n' "$1" "$(( __dt_r[0] | __dt_r[1] ))"
	fi
}
__dt_sync() {
	printf '\nDT %s sync\n' "$1"
}
__dt_resume() {
	printf '\nDT %s ready %s %s %s\n' "$1" "$__dt_cap" "$BASH_VERSION" "$__dt_d"
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

// Encoding is how the guest sends outputs that cannot go through the
// shell's `read` builtin (64 KiB or more, or with a NUL byte).
type Encoding byte

const (
	// Raw sends the bytes as they are: for a flow-controlled 8-bit clean
	// channel (a virtio serial port).
	Raw Encoding = 'r'
	// Base64 sends them base64-encoded: for a terminal (hvc0), whose line
	// discipline a command may change.
	Base64 Encoding = 'b'
)

// initLine is the line that runs __dt_init after the preamble.
func initLine(id string, enc Encoding) string {
	return "__dt_init " + id + " " + string(enc) + "\n"
}

// resumeLine is the line that asks a restored shell for its ready reply.
func resumeLine(id string) string {
	return "__dt_resume " + id + "\n"
}

// syncLine is the line that asks the shell for a sync reply.
func syncLine(id string) string {
	return "__dt_sync " + id + "\n"
}

// runLine is the line the host sends to run one command (after CommandEnv).
func runLine(id, command string, timeout time.Duration) (string, error) {
	if strings.IndexByte(command, 0) >= 0 {
		return "", errors.New("command contains a NUL byte")
	}
	return "__dt_run " + id + " " + formatTimeout(timeout) + " " + Quote(CommandEnv+command) + "\n", nil
}

// readyInfo is the rest of the ready line: "CAP BASH_VERSION DIR".
type readyInfo struct {
	capacity int64 // bytes of the backdoor's own tmpfs; 0: shared or unknown
	bash     string
	dir      string
}

func parseReady(rest string) (readyInfo, error) {
	f := strings.SplitN(rest, " ", 3)
	if len(f) != 3 {
		return readyInfo{}, fmt.Errorf("malformed ready line %q", rest)
	}
	c, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil || c < 0 {
		return readyInfo{}, fmt.Errorf("malformed capacity in ready line %q", rest)
	}
	return readyInfo{capacity: c, bash: f[1], dir: f[2]}, nil
}

// header is the first line of a reply frame, after "DT ID ".
type header struct {
	status   int
	timedOut bool
	enc      byte   // 'r', 'b', 'e' (cksum failed) or 'f' (file system full)
	length   int64  // the output's length in bytes
	crc      uint32 // its POSIX cksum CRC
	crcLater bool   // the CRC comes in the trailer
}

// parseHeader parses "STATUS TIMEDOUT ENC LEN CRC".
func parseHeader(line string) (header, error) {
	f := strings.Fields(line)
	if len(f) != 5 {
		return header{}, fmt.Errorf("malformed reply header %q", line)
	}
	st, err := strconv.Atoi(f[0])
	if err != nil || st < 0 || st > 255 {
		return header{}, fmt.Errorf("malformed exit status in reply header %q", line)
	}
	h := header{status: st}
	switch f[1] {
	case "0":
	case "1":
		h.timedOut = true
	default:
		return header{}, fmt.Errorf("malformed timeout flag in reply header %q", line)
	}
	switch f[2] {
	case "r", "b", "e", "f":
		h.enc = f[2][0]
	default:
		return header{}, fmt.Errorf("unknown encoding in reply header %q", line)
	}
	if h.length, err = strconv.ParseInt(f[3], 10, 64); err != nil || h.length < 0 {
		return header{}, fmt.Errorf("malformed length in reply header %q", line)
	}
	if f[4] == "-" && h.enc == 'r' {
		h.crcLater = true
	} else {
		crc, err := strconv.ParseUint(f[4], 10, 32)
		if err != nil {
			return header{}, fmt.Errorf("malformed checksum in reply header %q", line)
		}
		h.crc = uint32(crc)
	}
	if (h.enc == 'e' || h.enc == 'f') && h.length != 0 {
		return header{}, fmt.Errorf("malformed reply header %q", line)
	}
	return h, nil
}

// parseTrailer checks "DT ID end RC", or "DT ID end RC CRC" when
// crcLater, and returns RC and the CRC. An empty CRC (cksum failed in the
// guest, RC is then not 0) is returned as 0.
func parseTrailer(line, id string, crcLater bool) (rc int, crc uint32, err error) {
	rest, ok := strings.CutPrefix(line, "DT "+id+" end ")
	if !ok {
		return 0, 0, fmt.Errorf("malformed reply trailer %q", line)
	}
	rcText, crcText, hasCRC := strings.Cut(rest, " ")
	if hasCRC != crcLater {
		return 0, 0, fmt.Errorf("malformed reply trailer %q", line)
	}
	if rc, err = strconv.Atoi(rcText); err != nil {
		return 0, 0, fmt.Errorf("malformed reply trailer %q", line)
	}
	if crcLater && crcText != "" {
		c, err := strconv.ParseUint(crcText, 10, 32)
		if err != nil {
			return 0, 0, fmt.Errorf("malformed checksum in reply trailer %q", line)
		}
		crc = uint32(c)
	}
	return rc, crc, nil
}

// cksumTables are the slicing-by-8 tables of the POSIX cksum CRC
// (polynomial 0x04C11DB7, most significant bit first): cksumTables[0] is
// the classic byte table, cksumTables[k][i] is the CRC of byte i followed
// by k zero bytes.
var cksumTables = func() (t [8][256]uint32) {
	for i := range t[0] {
		c := uint32(i) << 24
		for range 8 {
			if c&0x80000000 != 0 {
				c = c<<1 ^ 0x04C11DB7
			} else {
				c <<= 1
			}
		}
		t[0][i] = c
	}
	for k := 1; k < 8; k++ {
		for i := range t[k] {
			p := t[k-1][i]
			t[k][i] = p<<8 ^ t[0][p>>24]
		}
	}
	return t
}()

// cksumUpdate feeds data into the CRC register c.
func cksumUpdate(c uint32, data []byte) uint32 {
	t := &cksumTables
	for len(data) >= 8 {
		c ^= uint32(data[0])<<24 | uint32(data[1])<<16 | uint32(data[2])<<8 | uint32(data[3])
		c = t[7][c>>24] ^ t[6][byte(c>>16)] ^ t[5][byte(c>>8)] ^ t[4][byte(c)] ^
			t[3][data[4]] ^ t[2][data[5]] ^ t[1][data[6]] ^ t[0][data[7]]
		data = data[8:]
	}
	for _, b := range data {
		c = c<<8 ^ t[0][byte(c>>24)^b]
	}
	return c
}

// Cksum returns the CRC that POSIX cksum(1) prints for data: the CRC of the
// bytes followed by their length (least significant byte first, as few
// bytes as needed), complemented.
func Cksum(data []byte) uint32 {
	return cksumFinish(cksumUpdate(0, data), len(data))
}

// cksumFinish feeds the length n into the CRC register c and complements it.
func cksumFinish(c uint32, n int) uint32 {
	var b [8]byte
	k := 0
	for l := uint64(n); l != 0; l >>= 8 {
		b[k] = byte(l)
		k++
	}
	return ^cksumUpdate(c, b[:k])
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
