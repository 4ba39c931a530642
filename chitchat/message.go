package chitchat

import "fmt"

// MessageType identifies a message on the wire. ONLY APPEND: values are on
// the wire.
type MessageType uint8

const (
	TypeSyn        MessageType = 0
	TypeSynAck     MessageType = 1
	TypeAck        MessageType = 2
	TypeBadCluster MessageType = 3
)

func (t MessageType) String() string {
	switch t {
	case TypeSyn:
		return "Syn"
	case TypeSynAck:
		return "SynAck"
	case TypeAck:
		return "Ack"
	case TypeBadCluster:
		return "BadCluster"
	}
	return fmt.Sprintf("MessageType(%d)", uint8(t))
}

// Message is one of *Syn, *SynAck, *Ack and *BadCluster.
//
// A handshake is Syn (A's digest) → SynAck (B's digest, the delta A lacks)
// → Ack (the delta B lacks): one exchange moves news both ways.
type Message interface {
	Type() MessageType
}

// Syn opens a handshake with the initiator's digest.
type Syn struct {
	ClusterID string
	Digest    Digest
}

// SynAck answers a Syn with the responder's digest and what the initiator
// lacks.
type SynAck struct {
	Digest Digest
	Delta  Delta
}

// Ack closes a handshake with what the responder lacks.
type Ack struct {
	Delta Delta
}

// BadCluster answers a Syn from another cluster.
type BadCluster struct{}

func (*Syn) Type() MessageType        { return TypeSyn }
func (*SynAck) Type() MessageType     { return TypeSynAck }
func (*Ack) Type() MessageType        { return TypeAck }
func (*BadCluster) Type() MessageType { return TypeBadCluster }
