package chitchat

// EncodedSize returns the exact size of the wire encoding of m, without
// encoding it (deltas built by an Engine carry their encoding already).
func EncodedSize(m Message) int { return messageSize(m, deltaSize) }

// encodedSizeHint is EncodedSize without encoding a delta that does not
// carry its encoding (it counts as empty): exact for every message an
// Engine builds.
func encodedSizeHint(m Message) int { return messageSize(m, cachedDeltaSize) }

// messageSize returns the size of the encoding of m, with its delta counted
// by sizeDelta.
func messageSize(m Message, sizeDelta func(*Delta) int) int {
	switch m := m.(type) {
	case *Syn:
		return envelopeSize + 1 + sizeStr(len(m.ClusterID)) + sizeDigest(m.Digest) +
			sizeUint(senderIndex(m.Digest, m.Sender)) + sizeCoverage(m.Cover) + sizePad(m.Pad)
	case *SynAck:
		return envelopeSize + 1 + sizeDigest(m.Digest) + sizeUint(senderIndex(m.Digest, m.Sender)) +
			sizeCoverage(m.Cover) + sizeDelta(&m.Delta) + sizeEcho(m.Echo)
	case *Ack:
		return envelopeSize + 1 + sizeDelta(&m.Delta)
	case *Push:
		n := envelopeSize + 1 + sizeStr(len(m.ClusterID)) + 1 + sizeArrayHeader(len(m.Notices)) + sizeDelta(&m.Delta)
		switch {
		case m.Range == nil:
		case m.Range.AfterRecipient:
			n += sizeUint(m.Range.short()) - 1
		default:
			n += sizeUint(m.Range.After>>32) + sizeUint(m.Range.Upto>>32)
		}
		for i := range m.Notices {
			n += sizeNotice(&m.Notices[i])
		}
		return n
	}
	return envelopeSize
}

func sizeNotice(n *Notice) int {
	return 1 + sizeUint(uint64(n.Kind)) + sizeStr(len(n.ID.Name)) + sizeUint(n.ID.Generation) + sizeAddr(n.ID.Addr) + sizeUint(n.Heartbeat)
}

func sizePad(n int) int {
	if n == 0 {
		return 1
	}
	return sizeBin(n)
}

func deltaSize(d *Delta) int {
	if d.enc != nil {
		return len(d.enc)
	}
	return len(appendDelta(nil, d))
}

func cachedDeltaSize(d *Delta) int { return max(len(d.enc), 1) }

// sizeEcho returns the size of an echo's encoding (none when nil).
func sizeEcho(e *Echo) int {
	if e == nil {
		return 0
	}
	return 1 + sizeUint(e.MaxVersion) + sizeUint(e.LastGCVersion) + sizeUint(e.Fingerprint)
}
