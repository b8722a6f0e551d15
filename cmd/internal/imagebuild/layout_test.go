package imagebuild

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestNewLayout(t *testing.T) {
	tests := []struct {
		name    string
		size    int64
		want    []Partition
		wantErr string
	}{
		{
			// The numbers of Debian's generic cloud images (sgdisk -p).
			name: "3 GiB like Debian cloud",
			size: 3 << 30,
			want: []Partition{
				{Number: 14, Type: "EF02", First: 2048, Last: 8191},
				{Number: 15, Type: "EF00", Filesystem: "vfat", Label: "UEFI", First: 8192, Last: 262143},
				{Number: 1, Type: "8300", Filesystem: "ext4", Label: "root", First: 262144, Last: 6289407},
			},
		},
		{
			name: "unaligned size ends on a MiB boundary",
			size: 3<<30 - 123*512,
			want: []Partition{
				{Number: 14, Type: "EF02", First: 2048, Last: 8191},
				{Number: 15, Type: "EF00", Filesystem: "vfat", Label: "UEFI", First: 8192, Last: 262143},
				{Number: 1, Type: "8300", Filesystem: "ext4", Label: "root", First: 262144, Last: 6289407},
			},
		},
		{
			name: "exactly one MiB more leaves room for the backup GPT",
			size: 3<<30 + 1<<20,
			want: []Partition{
				{Number: 14, Type: "EF02", First: 2048, Last: 8191},
				{Number: 15, Type: "EF00", Filesystem: "vfat", Label: "UEFI", First: 8192, Last: 262143},
				{Number: 1, Type: "8300", Filesystem: "ext4", Label: "root", First: 262144, Last: 6291455},
			},
		},
		{name: "too small", size: 256 << 20, wantErr: "too small"},
		{name: "not whole sectors", size: 3<<30 + 1, wantErr: "not a multiple of 512"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := NewLayout(tt.size)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("NewLayout(%d) error = %v, want containing %q", tt.size, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, l.Partitions); diff != "" {
				t.Errorf("partitions (-want +got):\n%s", diff)
			}
			checkLayout(t, l)
		})
	}
}

// checkLayout checks the GPT invariants: partitions inside the usable area,
// aligned and disjoint.
func checkLayout(t *testing.T, l Layout) {
	t.Helper()
	lastUsable := l.DiskSize/sectorSize - 34
	for i, p := range l.Partitions {
		if p.First < 34 || p.Last > lastUsable || p.First > p.Last {
			t.Errorf("partition %d [%d, %d] outside the usable sectors [34, %d]", p.Number, p.First, p.Last, lastUsable)
		}
		if p.First%align != 0 || (p.Last+1)%align != 0 {
			t.Errorf("partition %d [%d, %d] not aligned to %d sectors", p.Number, p.First, p.Last, align)
		}
		for _, q := range l.Partitions[i+1:] {
			if p.First <= q.Last && q.First <= p.Last {
				t.Errorf("partitions %d and %d overlap", p.Number, q.Number)
			}
		}
	}
}

func TestPartitionBytes(t *testing.T) {
	l, err := NewLayout(3 << 30)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		number     int
		offset     int64
		size       int64
		wantAbsent bool
	}{
		{number: 1, offset: 128 << 20, size: (6289408 - 262144) * 512},
		{number: 14, offset: 1 << 20, size: 3 << 20},
		{number: 15, offset: 4 << 20, size: 124 << 20},
		{number: 2, wantAbsent: true},
	}
	for _, tt := range tests {
		p, ok := l.Partition(tt.number)
		if ok == tt.wantAbsent {
			t.Errorf("Partition(%d) found = %v", tt.number, ok)
		}
		if !ok {
			continue
		}
		if p.Offset() != tt.offset || p.Size() != tt.size {
			t.Errorf("partition %d: offset %d size %d, want %d %d", tt.number, p.Offset(), p.Size(), tt.offset, tt.size)
		}
	}
}

func TestSgdiskArgs(t *testing.T) {
	l, err := NewLayout(3 << 30)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"--clear",
		"--new=14:2048:8191", "--typecode=14:EF02",
		"--new=15:8192:262143", "--typecode=15:EF00",
		"--new=1:262144:6289407", "--typecode=1:8300",
		"disk.raw",
	}
	if diff := cmp.Diff(want, sgdiskArgs(l, "disk.raw")); diff != "" {
		t.Errorf("sgdiskArgs (-want +got):\n%s", diff)
	}
}
