package overlay

// The reconcile loop of a Mesh: it keeps the device's peers (and routes)
// equal to the pool's view, by diffs, and retries failed updates.

import "time"

// Reconcile retries: a failed device update is retried after
// ReconcileRetryMin, then after twice the previous wait up to
// ReconcileRetryMax, until one succeeds, whether or not the pool changes
// meanwhile (a change triggers an attempt at once, and the backoff goes
// on until a success).
const (
	ReconcileRetryMin = time.Second
	ReconcileRetryMax = 30 * time.Second
)

// startReconciling starts the reconcile loop: a first reconcile at once,
// then one after every change of the pool's view, every kick, and every
// retry after a failure.
func (m *Mesh) startReconciling() {
	changes, stop := m.pool.watchChanges()
	m.stopWatch = stop
	m.kick = make(chan struct{}, 1)
	m.wg.Go(func() {
		var (
			retry   *time.Timer
			retryC  <-chan time.Time
			backoff time.Duration
		)
		defer func() {
			if retry != nil {
				retry.Stop()
			}
		}()
		for {
			select {
			case _, ok := <-changes:
				if !ok {
					return
				}
			case <-m.kick:
			case <-retryC:
				m.retries.Add(1)
			}
			if err := m.reconcile(); err == nil {
				backoff, retryC = 0, nil
				if retry != nil {
					retry.Stop()
				}
				continue
			}
			backoff = min(max(2*backoff, ReconcileRetryMin), ReconcileRetryMax)
			if retry == nil {
				retry = time.NewTimer(backoff)
			} else {
				retry.Reset(backoff)
			}
			retryC = retry.C
		}
	})
}

// kickReconcile asks the reconcile loop for a reconcile, without waiting.
func (m *Mesh) kickReconcile() {
	select {
	case m.kick <- struct{}{}:
	default: // one is due already
	}
}

// reconcile brings the device's peers to the pool's view. It returns the
// device's error, nil if the device matches.
func (m *Mesh) reconcile() error {
	m.reconMu.Lock()
	defer m.reconMu.Unlock()
	priv := m.currentKey()
	desired, skipped := Build(m.pool.Peers(), BuildOptions{
		SelfPublicKey:          priv.PublicKey(),
		SelfOverlayIP:          m.cfg.OverlayIP,
		SelfOverlayIP6:         m.cfg.OverlayIP6,
		PersistentKeepalive:    m.cfg.PersistentKeepalive,
		OverlayPrefixes:        m.cfg.OverlayPrefixes,
		AllowLoopbackEndpoints: m.cfg.AllowLoopbackEndpoints,
	})
	m.report(skipped)
	d := DiffPeers(m.applied, desired)
	if d.Empty() && !m.resync {
		return nil
	}
	update := d
	if m.resync {
		update = Diff{Added: desired}
	}
	err := m.dev.UpdatePeers(update, m.resync)
	if err != nil {
		m.resync = true
		m.failures.Add(1)
		m.log.Warn("overlay device reconcile failed; retrying with every peer", "diff", d, "err", err)
	} else {
		m.applied, m.resync = desired, false
		m.log.Info("overlay device reconciled", "diff", d, "peers", len(desired))
	}
	if m.cfg.OnReconcile != nil {
		m.cfg.OnReconcile(d, err)
	}
	return err
}

// report logs and counts each entry Build skipped, the first time it is
// skipped for that reason. Called with reconMu held.
func (m *Mesh) report(skipped []Skipped) {
	seen := make(map[skipKey]struct{}, len(skipped))
	for _, s := range skipped {
		k := skipKey{s.Key, s.Reason}
		seen[k] = struct{}{}
		if _, old := m.skipped[k]; old {
			continue
		}
		switch s.Reason {
		case SkipRefused:
			m.refused.Add(1)
			m.log.Warn("overlay peer refused", "peer", s.NodeID, "err", s.Err)
		case SkipMalformed:
			m.malformed.Add(1)
			m.log.Warn("overlay peer malformed", "peer", s.NodeID, "err", s.Err)
		default:
			m.log.Info("overlay peer not configured", "peer", s.NodeID, "reason", s.Reason, "err", s.Err)
		}
	}
	m.skipped = seen
}

// skipKey identifies a skipped entry across reconciles.
type skipKey struct {
	key    string
	reason SkipReason
}
