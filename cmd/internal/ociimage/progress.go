package ociimage

import (
	"io"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/schollz/progressbar/v3"
)

// newBar returns a byte progress bar of n bytes on w, or nil when w is nil.
func newBar(w io.Writer, n int64, what string) *progressbar.ProgressBar {
	if w == nil {
		return nil
	}
	return progressbar.NewOptions64(n,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(what),
		progressbar.OptionShowBytes(true),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(200*time.Millisecond),
		progressbar.OptionShowCount(),
		progressbar.OptionOnCompletion(func() { io.WriteString(w, "\n") }),
		progressbar.OptionFullWidth(),
	)
}

// uploadProgress feeds go-containerregistry's upload updates into a
// progress bar on w until the channel is closed; done is closed after.
func uploadProgress(w io.Writer, what string, updates <-chan v1.Update, done chan<- struct{}) {
	defer close(done)
	var bar *progressbar.ProgressBar
	for u := range updates {
		if u.Error != nil {
			continue
		}
		if bar == nil && u.Total > 0 {
			bar = newBar(w, u.Total, what)
		}
		if bar != nil {
			bar.Set64(u.Complete)
		}
	}
	if bar != nil {
		bar.Finish()
	}
}
