//go:build windows

package nodeinstall

import "context"

// runFiles: Windows nodes install into the certificate store (runWindows).
func (e *Engine) runFiles(_ context.Context, _ Params, r Result) Result {
	r.Detail = "file formats are installed on Linux nodes only; Windows nodes use CertStore and IisSite"
	return r
}

// recoverFiles: Windows nodes leave no file journal (runWindows keeps its own).
func (e *Engine) recoverFiles(context.Context, *journal) (string, error) {
	return "", nil
}
