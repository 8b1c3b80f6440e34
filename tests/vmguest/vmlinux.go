package vmguest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
)

// extractVmlinux returns the uncompressed kernel (an ELF with the PVH entry
// note) embedded in a bzImage whose payload is LZ4-compressed, as Debian's
// cloud kernels are (CONFIG_KERNEL_LZ4). QEMU boots such an ELF through
// its PVH entry point, which skips the in-guest decompression: under TCG
// that is most of the time before the kernel's first message.
func extractVmlinux(bzImage string) ([]byte, error) {
	b, err := os.ReadFile(bzImage)
	if err != nil {
		return nil, err
	}
	if len(b) < 0x250 || string(b[0x202:0x206]) != "HdrS" {
		return nil, fmt.Errorf("%s: not a bzImage", bzImage)
	}
	setupSects := int(b[0x1f1])
	if setupSects == 0 {
		setupSects = 4
	}
	off := (setupSects+1)*512 + int(binary.LittleEndian.Uint32(b[0x248:]))
	n := int(binary.LittleEndian.Uint32(b[0x24c:]))
	if off+n > len(b) || n < 8 {
		return nil, fmt.Errorf("%s: payload out of range", bzImage)
	}
	out, err := unlz4Legacy(b[off : off+n])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", bzImage, err)
	}
	if !bytes.HasPrefix(out, []byte("\x7fELF")) {
		return nil, fmt.Errorf("%s: payload is not an ELF image", bzImage)
	}
	return out, nil
}

// unlz4Legacy decompresses the LZ4 "legacy" frame format the kernel's
// build uses: a magic, then blocks each preceded by its compressed size,
// each an independent LZ4 block. The kernel build appends the
// uncompressed size (4 bytes), which ends the stream.
func unlz4Legacy(src []byte) ([]byte, error) {
	const magic = 0x184C2102
	if len(src) < 4 || binary.LittleEndian.Uint32(src) != magic {
		return nil, errors.New("payload is not LZ4 (legacy format)")
	}
	src = src[4:]
	var out []byte
	for len(src) > 4 {
		size := binary.LittleEndian.Uint32(src)
		src = src[4:]
		if size == magic {
			continue
		}
		if int(size) > len(src) {
			return nil, errors.New("truncated LZ4 block")
		}
		var err error
		if out, err = lz4Block(out, src[:size]); err != nil {
			return nil, err
		}
		src = src[size:]
	}
	return out, nil
}

// lz4Block appends the decompression of one LZ4 block to dst.
func lz4Block(dst, src []byte) ([]byte, error) {
	base := len(dst)
	corrupt := errors.New("corrupt LZ4 block")
	for i := 0; i < len(src); {
		tok := src[i]
		i++
		lit := int(tok >> 4)
		if lit == 15 {
			for {
				if i >= len(src) {
					return nil, corrupt
				}
				c := src[i]
				i++
				lit += int(c)
				if c != 255 {
					break
				}
			}
		}
		if i+lit > len(src) {
			return nil, corrupt
		}
		dst = append(dst, src[i:i+lit]...)
		i += lit
		if i == len(src) {
			break // the last sequence has literals only
		}
		if i+2 > len(src) {
			return nil, corrupt
		}
		offset := int(src[i]) | int(src[i+1])<<8
		i += 2
		ml := int(tok & 15)
		if ml == 15 {
			for {
				if i >= len(src) {
					return nil, corrupt
				}
				c := src[i]
				i++
				ml += int(c)
				if c != 255 {
					break
				}
			}
		}
		ml += 4
		from := len(dst) - offset
		if offset == 0 || from < base {
			return nil, corrupt
		}
		if offset >= ml {
			dst = append(dst, dst[from:from+ml]...)
		} else {
			for k := 0; k < ml; k++ { // byte by byte: the match overlaps
				dst = append(dst, dst[from+k])
			}
		}
	}
	return dst, nil
}
