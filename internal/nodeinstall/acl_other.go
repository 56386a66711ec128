//go:build unix && !linux

package nodeinstall

func getACL(int) ([]byte, error) { return nil, nil }

func setACL(int, []byte) error { return nil }
