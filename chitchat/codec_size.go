package chitchat

// EncodedSize returns the exact size of the wire encoding of m, without
// encoding it (deltas built by an Engine carry their encoding already).
func EncodedSize(m Message) int {
	switch m := m.(type) {
	case *Syn:
		return envelopeSize + 1 + sizeStr(len(m.ClusterID)) + sizeDigest(m.Digest)
	case *SynAck:
		return envelopeSize + 1 + sizeDigest(m.Digest) + deltaSize(&m.Delta)
	case *Ack:
		return envelopeSize + 1 + deltaSize(&m.Delta)
	}
	return envelopeSize
}

func deltaSize(d *Delta) int {
	if d.enc != nil {
		return len(d.enc)
	}
	return len(appendDelta(nil, d))
}
