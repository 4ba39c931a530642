package chitchat_test

import (
	"testing"

	"github.com/gossipkit/chitchat-go/chitchat"
	"github.com/gossipkit/chitchat-go/transport"
)

// The receive buffer is the datagram budget: a server with a 1,400-byte
// budget drops a 2,000-byte datagram as truncated (RecvErrors), where a
// 64 KiB buffer took it in whole and failed to decode it (DecodeErrors).
func TestRecvBufferIsTheDatagramBudget(t *testing.T) {
	srv, raw := udpServerAndProbe(t, "node-budget", 1400)
	to := srv.LocalAddr()
	if _, err := raw.WriteToUDPAddrPort(make([]byte, 2000), to); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.WriteToUDPAddrPort(chitchat.EncodeMessage(&chitchat.Syn{ClusterID: "cluster_id"}), to); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, transport.MaxPayloadSize)
	for {
		n, _, err := raw.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatalf("no SynAck from the server: %v", err)
		}
		if m, err := chitchat.DecodeMessage(buf[:n]); err == nil {
			if _, ok := m.(*chitchat.SynAck); ok {
				break
			}
		}
	}
	// The server reads datagrams in order: the large one came first.
	st := srv.Stats()
	if st.RecvErrors != 1 || st.DecodeErrors != 0 {
		t.Errorf("RecvErrors = %d, DecodeErrors = %d; want 1 and 0 (the 2,000-byte datagram truncated at the 1,400-byte buffer)",
			st.RecvErrors, st.DecodeErrors)
	}
}
