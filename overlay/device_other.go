//go:build !linux

package overlay

import (
	"errors"
	"log/slog"
)

var errNotLinux = errors.New("overlay: TUN and kernel devices are supported on Linux only; use DeviceNetstack")

func newTUNDevice(MeshConfig, PrivateKey, *slog.Logger) (Device, error)    { return nil, errNotLinux }
func newKernelDevice(MeshConfig, PrivateKey, *slog.Logger) (Device, error) { return nil, errNotLinux }
