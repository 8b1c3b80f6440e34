package vmguest

import (
	"bufio"
	"fmt"
	"io"
	"io/fs"
)

// cpioWriter writes a cpio archive in the "newc" (SVR4, no CRC) format the
// kernel unpacks as an initramfs. Only what a tiny initramfs needs:
// directories, regular files, symlinks and character devices.
type cpioWriter struct {
	w   *bufio.Writer
	ino uint32
	off int64
	err error
}

func newCPIOWriter(w io.Writer) *cpioWriter { return &cpioWriter{w: bufio.NewWriter(w), ino: 1} }

// entry writes one header, its name and its data, each padded to 4 bytes.
func (c *cpioWriter) entry(name string, mode uint32, rdevMajor, rdevMinor uint32, data []byte) {
	if c.err != nil {
		return
	}
	hdr := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		c.ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdevMajor, rdevMinor, len(name)+1, 0)
	c.ino++
	c.write([]byte(hdr))
	c.write(append([]byte(name), 0))
	c.pad()
	c.write(data)
	c.pad()
}

func (c *cpioWriter) write(b []byte) {
	if c.err != nil {
		return
	}
	n, err := c.w.Write(b)
	c.off += int64(n)
	c.err = err
}

func (c *cpioWriter) pad() {
	if r := c.off % 4; r != 0 {
		c.write(make([]byte, 4-r))
	}
}

const (
	sIFDIR = 0o040000
	sIFREG = 0o100000
	sIFLNK = 0o120000
	sIFCHR = 0o020000
)

func (c *cpioWriter) Dir(name string) { c.entry(name, sIFDIR|0o755, 0, 0, nil) }
func (c *cpioWriter) File(name string, perm fs.FileMode, b []byte) {
	c.entry(name, sIFREG|uint32(perm.Perm()), 0, 0, b)
}
func (c *cpioWriter) Symlink(name, target string) { c.entry(name, sIFLNK|0o777, 0, 0, []byte(target)) }
func (c *cpioWriter) CharDev(name string, major, minor uint32) {
	c.entry(name, sIFCHR|0o600, major, minor, nil)
}

// Close writes the trailer and flushes; it does not close the underlying
// writer.
func (c *cpioWriter) Close() error {
	c.entry("TRAILER!!!", 0, 0, 0, nil)
	if c.err != nil {
		return c.err
	}
	return c.w.Flush()
}
