package main

func runProcs(o options, logf func(string, ...any)) any { return nil }
