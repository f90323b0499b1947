//go:build !amd64 && !arm64

package launch

import (
	"errors"
	"syscall"
)

const (
	sigDefault uintptr = 0
	sigIgnore  uintptr = 1
)

// setDisposition is not written for this architecture's struct sigaction.
func setDisposition(syscall.Signal, uintptr) error { return errors.ErrUnsupported }
