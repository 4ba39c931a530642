package main

import (
	crand "crypto/rand"
	"math/rand/v2"
	"sync"
)

// lockedRand is a random source safe for concurrent use, seeded from
// crypto/rand, for the choices the demo's servers make per request (DNS
// answer order, blocking-query jitter). No global generator is used.
type lockedRand struct {
	mu sync.Mutex
	r  *rand.Rand
}

func newLockedRand() *lockedRand {
	var seed [32]byte
	crand.Read(seed[:]) // never fails on supported platforms
	return &lockedRand{r: rand.New(rand.NewChaCha8(seed))}
}

func (l *lockedRand) int64N(n int64) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.Int64N(n)
}

func (l *lockedRand) shuffle(n int, swap func(i, j int)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.r.Shuffle(n, swap)
}
