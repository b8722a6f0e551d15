// Package report is the log of one test run: the nested, coloured terminal
// output the user reads, and the JUnit XML file CI reads.
//
// A Log is a tree of blocks. The root block stands for the whole run;
// Nested opens a child block (printed as a bright header, closed by a
// "(finished: ..., in 0.12 seconds)" line), Subtest opens a block that also
// becomes one JUnit test case. Lines are indented by their block's depth and
// prefixed with the machine they concern ("server: must succeed: true"), as
// in nixpkgs' test driver. Serial console lines ("server # ...") are printed
// only while serial output is on (serial_stdout_on / serial_stdout_off in
// test scripts).
//
// Blocks are safe for concurrent use: each one knows its own depth, so
// threads of a test script that log at the same time keep their own nesting.
// Colour is the caller's choice (UseColor decides it for a terminal, honouring
// NO_COLOR); the JUnit output and the captured text never contain escape
// sequences.
//
// This package does not run anything; it is pure bookkeeping and formatting,
// and its tests need no VM.
package report
