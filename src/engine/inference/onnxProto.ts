// ONNX models written directly as protobuf bytes (no protobuf library): the writer, nodes, initializers, value
// infos and the model around a graph. Field numbers are those of onnx.proto (IR version 8, opset 13). Used by the
// export of the segmentation network (onnxExport.ts) and by tests that need small graphs of a given layout.

/** A minimal protobuf writer: varints, length-delimited fields, fixed32 floats. */
export class Proto {
  private readonly parts: Uint8Array[] = [];
  private size = 0;

  private push(bytes: Uint8Array): void {
    this.parts.push(bytes);
    this.size += bytes.length;
  }

  private varint(v: number | bigint): void {
    let n = BigInt.asUintN(64, BigInt(v));
    const out: number[] = [];
    do {
      let b = Number(n & 0x7fn);
      n >>= 7n;
      if (n > 0n) b |= 0x80;
      out.push(b);
    } while (n > 0n);
    this.push(Uint8Array.from(out));
  }

  private key(field: number, wire: number): void {
    this.varint((field << 3) | wire);
  }

  int(field: number, v: number): this {
    this.key(field, 0);
    this.varint(v);
    return this;
  }

  float(field: number, v: number): this {
    this.key(field, 5);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    this.push(b);
    return this;
  }

  bytes(field: number, data: Uint8Array): this {
    this.key(field, 2);
    this.varint(data.length);
    this.push(data);
    return this;
  }

  string(field: number, s: string): this {
    return this.bytes(field, new TextEncoder().encode(s));
  }

  message(field: number, m: Proto): this {
    return this.bytes(field, m.finish());
  }

  finish(): Uint8Array {
    const out = new Uint8Array(this.size);
    let o = 0;
    for (const p of this.parts) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  }
}

export const FLOAT = 1;
const INT64 = 7;
const ATTR_FLOAT = 1;
const ATTR_INT = 2;
const ATTR_STRING = 3;
const ATTR_INTS = 7;

export type Attr =
  | { name: string; f: number }
  | { name: string; i: number }
  | { name: string; s: string }
  | { name: string; ints: number[] };

function attribute(a: Attr): Proto {
  const p = new Proto().string(1, a.name);
  if ('f' in a) p.float(2, a.f).int(20, ATTR_FLOAT);
  else if ('i' in a) p.int(3, a.i).int(20, ATTR_INT);
  else if ('s' in a) p.string(4, a.s).int(20, ATTR_STRING);
  else {
    for (const v of a.ints) p.int(8, v);
    p.int(20, ATTR_INTS);
  }
  return p;
}

export function node(op: string, inputs: string[], outputs: string[], name: string, attrs: Attr[] = []): Proto {
  const p = new Proto();
  inputs.forEach((i) => p.string(1, i));
  outputs.forEach((o) => p.string(2, o));
  p.string(3, name).string(4, op);
  attrs.forEach((a) => p.message(5, attribute(a)));
  return p;
}

export function floatTensor(name: string, dims: number[], values: Float32Array): Proto {
  const p = new Proto();
  dims.forEach((d) => p.int(1, d));
  p.int(2, FLOAT).string(8, name);
  return p.bytes(9, new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
}

export function int64Tensor(name: string, values: number[]): Proto {
  const p = new Proto().int(1, values.length).int(2, INT64).string(8, name);
  const raw = new BigInt64Array(values.map((v) => BigInt(v)));
  return p.bytes(9, new Uint8Array(raw.buffer));
}

/** A float tensor value with the given dims: a number is a fixed size, a string a named free one. */
export function tensorValueInfo(name: string, dims: readonly (number | string)[], elemType = FLOAT): Proto {
  const shape = new Proto();
  for (const d of dims) shape.message(1, typeof d === 'number' ? new Proto().int(1, d) : new Proto().string(2, d));
  const tensorType = new Proto().int(1, elemType).message(2, shape);
  return new Proto().string(1, name).message(2, new Proto().message(1, tensorType));
}

/** A graph (nodes, initializers, inputs and outputs already in it) as a model's bytes, opset 13. */
export function onnxModel(graph: Proto): Uint8Array {
  return new Proto()
    .int(1, 8) // ir_version
    .string(2, 'maskloop')
    .message(7, graph)
    .message(8, new Proto().string(1, '').int(2, 13))
    .finish();
}
