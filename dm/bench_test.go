package dm

import "testing"

func benchTable() Table {
	return Table{
		{Start: 0, Length: 1 << 30, Target: Clone{Metadata: "253:3", Destination: "8:32", Source: "8:16", RegionSize: 128,
			HydrationThreshold: 64, HydrationBatchSize: 16}},
		{Start: 1 << 30, Length: 1 << 20, Target: Linear{Device: "8:48", Offset: 2048}},
	}
}

func BenchmarkTableRender(b *testing.B) {
	t := benchTable()
	b.ReportAllocs()
	for b.Loop() {
		_ = t.String()
	}
}

func BenchmarkParseCloneStatus(b *testing.B) {
	const line = "8 52/4096 128 300/1024 64 1 no_discard_passdown 4 hydration_threshold 64 hydration_batch_size 16 rw"
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseCloneStatus(line); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBuildLoadRequest(b *testing.B) {
	t := benchTable()
	b.ReportAllocs()
	for b.Loop() {
		p, err := encodeTable(t)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := newRequest(header{Name: "lunferry-bench", TargetCount: uint32(len(t))}, p, 0); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseStatusResult(b *testing.B) {
	data := kernelStatus([]RawLine{{Length: 1 << 30, Type: "clone", Params: "8 52/4096 128 300/1024 64 0 4 hydration_threshold 64 hydration_batch_size 16 rw"}})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parseTargetSpecs(data, 1); err != nil {
			b.Fatal(err)
		}
	}
}
