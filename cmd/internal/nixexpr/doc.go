// Package nixexpr prints Go values as Nix expressions: strings, integers,
// booleans, null, lists, attribute sets and `import ./path` expressions.
//
// It exists so that generated Nix files (see nixgen) are correct by
// construction: strings are escaped for Nix's double-quoted syntax
// (`"`, `\`, `${`, control characters), attribute names are quoted when
// they are not plain identifiers ("13", "24.04") or are keywords, and
// attribute sets are printed with sorted keys so output is deterministic.
//
// It is not a Nix parser or evaluator, and it prints no functions or other
// code: generated files hold data only. Its tests are plain unit tests; one
// of them round-trips strings through nix-instantiate when that is on PATH.
package nixexpr
