package chitchat

import "testing"

func TestUnderGoTest(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want bool
	}{
		{"go test", []string{"-test.paniconexit0", "-test.timeout=10m0s"}, true},
		{"demo flags", []string{"--listen_addr", "127.0.0.1:10000", "--node_id", "-test.x"}, true},
		{"no flags", nil, false},
		{"demo", []string{"--listen_addr", "127.0.0.1:10000"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := underGoTest(tt.args); got != tt.want {
				t.Errorf("underGoTest(%q) = %v, want %v", tt.args, got, tt.want)
			}
		})
	}
}
