// The mapping between image pixels and screen (CSS) pixels: screen = image * scale + offset. Pure, so the
// webview tests and unit tests can check it exactly.

export interface Viewport {
  scale: number;
  offsetX: number;
  offsetY: number;
}

export const MIN_SCALE = 1 / 64;
export const MAX_SCALE = 64;

export function clampScale(scale: number): number {
  return Math.min(MAX_SCALE, Math.max(MIN_SCALE, scale));
}

/** The whole image centred in the view, as large as fits; `allowUpscale` false keeps small images at 1:1. */
export function fitViewport(
  imageW: number,
  imageH: number,
  viewW: number,
  viewH: number,
  allowUpscale = true,
): Viewport {
  let scale = Math.min(viewW / imageW, viewH / imageH);
  if (!allowUpscale) scale = Math.min(scale, 1);
  scale = clampScale(scale);
  return {
    scale,
    offsetX: Math.round((viewW - imageW * scale) / 2),
    offsetY: Math.round((viewH - imageH * scale) / 2),
  };
}

/** 1:1 with the image centre at the view centre, on whole pixels so each image pixel is one screen pixel. */
export function actualSizeViewport(imageW: number, imageH: number, viewW: number, viewH: number): Viewport {
  return { scale: 1, offsetX: Math.round((viewW - imageW) / 2), offsetY: Math.round((viewH - imageH) / 2) };
}

/** Zooms by `factor` keeping the image point under (sx, sy) fixed on screen. */
export function zoomAt(view: Viewport, factor: number, sx: number, sy: number): Viewport {
  const scale = clampScale(view.scale * factor);
  const ix = (sx - view.offsetX) / view.scale;
  const iy = (sy - view.offsetY) / view.scale;
  return { scale, offsetX: sx - ix * scale, offsetY: sy - iy * scale };
}

export function panBy(view: Viewport, dx: number, dy: number): Viewport {
  return { scale: view.scale, offsetX: view.offsetX + dx, offsetY: view.offsetY + dy };
}

/** Screen (CSS pixel) to continuous image coordinates: pixel (x, y) covers [x, x+1) x [y, y+1). */
export function screenToImage(view: Viewport, sx: number, sy: number): { x: number; y: number } {
  return { x: (sx - view.offsetX) / view.scale, y: (sy - view.offsetY) / view.scale };
}

export function imageToScreen(view: Viewport, ix: number, iy: number): { x: number; y: number } {
  return { x: ix * view.scale + view.offsetX, y: iy * view.scale + view.offsetY };
}
