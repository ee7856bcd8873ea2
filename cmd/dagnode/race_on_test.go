//go:build race

package main

// raceEnabled reports a -race build: the detector slows the node, so the
// longest process test mines less under it.
const raceEnabled = true
