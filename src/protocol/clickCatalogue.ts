// Click-segmentation models maskloop can download when a person asks: SAM-family encoder/decoder pairs with a
// permissive licence, each file pinned by URL, size and SHA-256. Nothing is downloaded without the person asking.

export interface CatalogueFile {
  url: string;
  /** Bytes, as published. */
  size: number;
  sha256: string;
  /** File name on disk: NAME.encoder.onnx / NAME.decoder.onnx, so the pair is found like every other pair. */
  name: string;
}

export interface CatalogueModel {
  id: string;
  label: string;
  detail: string;
  licence: string;
  encoder: CatalogueFile;
  decoder: CatalogueFile;
}

// The quantized exports of Meta's Segment Anything weights (Apache-2.0) that labelme publishes on its GitHub
// releases; the SHA-256s are those labelme's author publishes with osam, the sizes those of the release.
const LABELME_SAM = 'https://github.com/wkentaro/labelme/releases/download/sam-20230416/';
const SAM_LICENCE = "Apache-2.0 (Meta's Segment Anything weights; exported to ONNX and quantized by labelme's author)";

/** One of labelme's SAM pairs: STEM.encoder.onnx and STEM.decoder.onnx, each [size, SHA-256]. */
function labelmeSam(
  id: string,
  label: string,
  detail: string,
  stem: string,
  encoder: [number, string],
  decoder: [number, string],
): CatalogueModel {
  const file = (role: 'encoder' | 'decoder', [size, sha256]: [number, string]): CatalogueFile => ({
    url: `${LABELME_SAM}${stem}.${role}.onnx`,
    size,
    sha256,
    name: `${stem}.${role}.onnx`,
  });
  return {
    id,
    label,
    detail,
    licence: SAM_LICENCE,
    encoder: file('encoder', encoder),
    decoder: file('decoder', decoder),
  };
}

export const CLICK_CATALOGUE: readonly CatalogueModel[] = [
  labelmeSam(
    'sam-vit-b',
    'SAM ViT-B (quantized)',
    '104 MiB; the fastest SAM, a few seconds per image to encode on a laptop CPU',
    'sam_vit_b_01ec64.quantized',
    [99_827_688, '3346b9cc551c9902fbf3b203935e933592b22e042365f58321c17fc12641fd6a'],
    [8_743_656, 'edbcf1a0afaa55621fb0abe6b3db1516818b609ea9368f309746a3afc68f7613'],
  ),
  labelmeSam(
    'sam-vit-l',
    'SAM ViT-L (quantized)',
    '316 MiB; more accurate, about three times slower to encode',
    'sam_vit_l_0b3195.quantized',
    [322_569_107, 'f7158a4a1fe7f670ef47ea2f7f852685425c1ed6caa40f5df86cbe2b0502034f'],
    [8_743_680, '552ebb23bf52c5e5b971ac710d1eb8dccfd88b36cc6aff881d1536d1662e6d7b'],
  ),
  labelmeSam(
    'sam-vit-h',
    'SAM ViT-H (quantized)',
    '634 MiB; the most accurate, the slowest',
    'sam_vit_h_4b8939.quantized',
    [656_243_518, 'a5c745fd4279efc5e5436b412200e983dafc2249ce172af6cc0002a71bb5f485'],
    [8_743_672, '020b385a45ffe51097e1acd10cd791075a86171153505f789a793bc382eef210'],
  ),
];
