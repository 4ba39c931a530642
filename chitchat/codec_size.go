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
		return envelopeSize + 1 + sizeStr(len(m.ClusterID)) + sizeDigest(m.Digest)
	case *SynAck:
		return envelopeSize + 1 + sizeDigest(m.Digest) + sizeDelta(&m.Delta)
	case *Ack:
		return envelopeSize + 1 + sizeDelta(&m.Delta)
	}
	return envelopeSize
}

func deltaSize(d *Delta) int {
	if d.enc != nil {
		return len(d.enc)
	}
	return len(appendDelta(nil, d))
}

func cachedDeltaSize(d *Delta) int { return max(len(d.enc), 1) }
