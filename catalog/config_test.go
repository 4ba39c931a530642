package catalog

import (
	"strings"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	if err := (Config{}).Validate(); err != nil {
		t.Errorf("zero Config: %v", err)
	}
	err := Config{Datacenter: "eu west", RefreshInterval: -1, MaxServicesPerNode: -1, FirstIndex: 1 << 63}.Validate()
	for _, want := range []string{`datacenter "eu west"`, "refresh interval -1ns", "max services per node -1", "first index"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want every problem, %q among them", err, want)
		}
	}
	d := Config{}.withDefaults()
	if d.Datacenter != "dc1" || d.RefreshInterval != DefaultRefreshInterval || d.MaxServicesPerNode != 256 || d.FirstIndex != 1 || d.Probe == nil || d.Logger == nil {
		t.Errorf("defaults %+v", d)
	}
}
