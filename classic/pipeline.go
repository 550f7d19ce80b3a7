package classic

import (
	"crypto/sha256"
	"hash"
	"io"
)

// A transfer is two stages on each side, so that the CPU work (sealing,
// opening, hashing) overlaps the waiting (the socket, the disk): the
// sender hashes and copies while the last record is sealed and written;
// the receiver opens the next record while the last is hashed and
// written. pipelineDepth records are in flight, each at most
// MaxRecordSize: that bounds the memory.
const pipelineDepth = 4

// sendPipeline is the io.Writer the content is streamed into: it hashes
// and counts what it is given, and a goroutine of its own seals it into
// records on rc.
type sendPipeline struct {
	rc    *recordConn
	h     hash.Hash
	n     int64
	prog  *progress
	full  chan []byte
	free  chan []byte
	done  chan struct{}
	err   error // the sealing goroutine's, read after done
	stage []byte
}

func startSendPipeline(rc *recordConn, prog *progress) *sendPipeline {
	p := &sendPipeline{rc: rc, h: sha256.New(), prog: prog,
		full: make(chan []byte, pipelineDepth), free: make(chan []byte, pipelineDepth+1), done: make(chan struct{})}
	for range pipelineDepth + 1 {
		p.free <- make([]byte, sendRecordSize)
	}
	go func() {
		defer close(p.done)
		for buf := range p.full {
			if p.err == nil {
				p.rc.setDeadline(IdleTimeout)
				p.err = p.rc.writeRecord(buf)
				p.prog.add(len(buf))
			}
			p.free <- buf[:cap(buf)]
		}
	}()
	return p
}

func (p *sendPipeline) Write(b []byte) (int, error) {
	written := 0
	for len(b) > 0 {
		var buf []byte
		select {
		case buf = <-p.free:
		case <-p.done:
			return written, p.err
		}
		n := copy(buf, b)
		p.h.Write(buf[:n])
		p.full <- buf[:n]
		b, written, p.n = b[n:], written+n, p.n+int64(n)
	}
	return written, nil
}

// ReadFrom reads r into the records' buffers themselves, a record at a
// time, so that a file is not copied once more on its way (io.Copy uses
// it).
func (p *sendPipeline) ReadFrom(r io.Reader) (int64, error) {
	var total int64
	for {
		var buf []byte
		select {
		case buf = <-p.free:
		case <-p.done:
			return total, p.err
		}
		n, err := io.ReadFull(r, buf)
		if n > 0 {
			p.h.Write(buf[:n])
			p.full <- buf[:n]
			total, p.n = total+int64(n), p.n+int64(n)
		} else {
			p.free <- buf
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// finish waits for the last record and returns the sealer's error.
func (p *sendPipeline) finish() error {
	close(p.full)
	<-p.done
	return p.err
}

// receivePipeline reads and opens records on a goroutine of its own, up
// to size bytes of plaintext (a record past it is ErrTooManyBytes), and
// hands them over in order.
type receivePipeline struct {
	full chan []byte
	free chan []byte
	stop chan struct{}
	done chan struct{}
	err  error // the reader's, read after full is closed
}

func startReceivePipeline(rc *recordConn, size int64) *receivePipeline {
	p := &receivePipeline{full: make(chan []byte, pipelineDepth), free: make(chan []byte, pipelineDepth+1),
		stop: make(chan struct{}), done: make(chan struct{})}
	for range pipelineDepth + 1 {
		p.free <- nil
	}
	go func() {
		defer close(p.done)
		defer close(p.full)
		var got int64
		for got < size {
			var buf []byte
			select {
			case buf = <-p.free:
			case <-p.stop:
				return
			}
			rc.setDeadline(IdleTimeout)
			rec, err := rc.o.openInto(rc.r, buf)
			if err != nil {
				p.err = err
				return
			}
			if int64(len(rec)) > size-got {
				p.err = ErrTooManyBytes
				return
			}
			got += int64(len(rec))
			p.full <- rec
		}
	}()
	return p
}

// next is the next plaintext, or io.EOF once size bytes came.
func (p *receivePipeline) next() ([]byte, error) {
	buf, ok := <-p.full
	if !ok {
		if p.err != nil {
			return nil, p.err
		}
		return nil, io.EOF
	}
	return buf, nil
}

func (p *receivePipeline) release(buf []byte) { p.free <- buf }

// close stops the reader (the caller closes the connection if it may be
// blocked reading) and waits for it.
func (p *receivePipeline) close() {
	close(p.stop)
	for range p.full {
	}
	<-p.done
}
