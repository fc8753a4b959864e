// The mask editor canvas app. It renders the image, the mask and the model's suggestion, and turns what the
// person does into edits (bounding box + bytes) for the host, which owns the document.
import { applyDiff, diffMasks, emptyBox, growBox, isEmptyBox, type Box, type MaskDiff } from '../../src/masks/maskDiff';
import type { MaskImage } from '../../src/masks/maskImage';
import { colourRegion, fillPolygon, paintSegment, paintSelection, type Point } from '../../src/masks/rasterTools';
import {
  assertNever,
  type ClickState,
  type EditorSettings,
  type HostToWebview,
  type SuggestionState,
  type WebviewToHost,
} from '../../src/protocol/editorProtocol';
import { EDITOR_DEFAULTS } from '../../src/protocol/settings';
import {
  BOX_DRAG_PX,
  ClickSession,
  candidateClassMap,
  drawClickMarks,
  paintCandidate,
  type ClickPress,
} from './clickTool';
import { el, layer, type Layer } from './dom';
import { keyAction, type LayerToggle, type Tool } from './keymap';
import { colourTable, maskPixels, suggestionPixels } from './layers';
import { suggestionText } from './suggestionText';
import { renderToolbar } from './toolbar';
import { actualSizeViewport, fitViewport, panBy, screenToImage, zoomAt, type Viewport } from './viewport';

/** What survives a reload of the webview (VS Code's setState). */
export interface ViewState {
  view: Viewport | null;
  tool: Tool;
  brushSize: number;
  activeClass: number;
  opacity: number;
  tolerance: number;
  /**
   * Whether the person moved the opacity or tolerance slider in this editor: until then the
   * `maskloop.maskOpacity` and `maskloop.wandTolerance` settings decide, and a changed setting applies again.
   */
  opacityChosen: boolean;
  toleranceChosen: boolean;
  showMask: boolean;
  showSuggestion: boolean;
  showImage: boolean;
  showConfidence: boolean;
}

export interface HostLink {
  post(message: WebviewToHost): void;
  getState(): Partial<ViewState> | undefined;
  setState(state: ViewState): void;
}

interface Stroke {
  before: MaskImage;
  box: Box;
  last: Point;
  label: string;
  value: number;
}

export class EditorApp {
  private width = 0;
  private height = 0;
  private rgba: Uint8Array = new Uint8Array(0);
  private mask: MaskImage = { width: 0, height: 0, data: new Uint8Array(0) };
  private settings: EditorSettings = { classes: [], ...EDITOR_DEFAULTS, modelNotice: null };
  private suggestion: SuggestionState = { state: 'none', reason: 'no suggestion yet' };
  private lut: Uint32Array = new Uint32Array(256);
  private state: ViewState;
  private view: Viewport = { scale: 1, offsetX: 0, offsetY: 0 };
  private imageLayer: Layer | null = null;
  private maskLayer: Layer | null = null;
  private suggestionLayer: Layer | null = null;
  private clickLayer: Layer | null = null;
  private readonly click = new ClickSession();
  /** As the host last said (it says so when an editor opens); until then the tool just takes clicks. */
  private clickState: ClickState = { state: 'preparing', message: '' };
  /** A press of the click tool: a click, or a box when it travels. */
  private clickPress: ClickPress | null = null;
  private readonly clickInfo: HTMLElement;
  private readonly canvas: HTMLCanvasElement;
  private readonly ctx: CanvasRenderingContext2D;
  private readonly status: HTMLElement;
  private readonly suggestionInfo: HTMLElement;
  private readonly framePosition: HTMLElement;
  private readonly toolbar: HTMLElement;
  private readonly palette: HTMLElement;
  private frameRequested = false;
  private pointer: Point | null = null;
  private stroke: Stroke | null = null;
  private polygon: Point[] = [];
  private lassoDragging = false;
  private panning: { x: number; y: number; pointerId: number } | null = null;
  private spaceDown = false;
  private readonly dirtyMask: Box = emptyBox();
  /** The last ready suggestion counted in data-suggestion-count (tests wait on a new one). */
  private countedSuggestion: SuggestionState | null = null;

  constructor(
    private readonly root: HTMLElement,
    private readonly host: HostLink,
  ) {
    const saved = host.getState() ?? {};
    this.state = {
      view: saved.view ?? null,
      tool: saved.tool ?? 'brush',
      brushSize: saved.brushSize ?? 12,
      activeClass: saved.activeClass ?? 1,
      opacity: saved.opacity ?? EDITOR_DEFAULTS.maskOpacity,
      tolerance: saved.tolerance ?? EDITOR_DEFAULTS.wandTolerance,
      opacityChosen: saved.opacityChosen ?? false,
      toleranceChosen: saved.toleranceChosen ?? false,
      showMask: saved.showMask ?? true,
      showSuggestion: saved.showSuggestion ?? true,
      showImage: saved.showImage ?? true,
      showConfidence: saved.showConfidence ?? false,
    };
    this.toolbar = el('div', { className: 'toolbar', role: 'toolbar', ariaLabel: 'Mask editor tools' });
    this.palette = el('div', { className: 'palette', role: 'radiogroup', ariaLabel: 'Classes' });
    this.suggestionInfo = el('span', { className: 'suggestion-info', role: 'status' });
    this.status = el('span', { className: 'status' });
    this.clickInfo = el('span', { className: 'click-info', role: 'status' });
    this.framePosition = el('span', {
      className: 'frame-position',
      title: 'Alt+Left / Alt+Right: previous / next image of this folder (saves first)',
    });
    this.canvas = el('canvas', { className: 'view', tabIndex: 0, ariaLabel: 'Image and mask' });
    const ctx = this.canvas.getContext('2d');
    if (!ctx) throw new Error('no 2D canvas');
    this.ctx = ctx;
    const stage = el('div', { className: 'stage' }, [this.canvas]);
    root.append(
      this.toolbar,
      el('div', { className: 'infobar' }, [
        this.palette,
        this.suggestionInfo,
        this.clickInfo,
        this.status,
        this.framePosition,
      ]),
      stage,
    );
    root.dataset.ready = 'false';
    this.bindInput(stage);
    new ResizeObserver(() => this.resize()).observe(stage);
  }

  // ---- messages from the host ----

  handle(message: HostToWebview): void {
    switch (message.type) {
      case 'init':
        this.init(message.width, message.height, message.rgba, message.mask, message.settings, message.fileName);
        this.framePosition.textContent = message.frame
          ? `frame ${message.frame.index + 1} of ${message.frame.count}`
          : '';
        break;
      case 'applyDiff':
        this.cancelGesture();
        applyDiff(this.mask, message.diff, message.side);
        this.markMask({
          x0: message.diff.x,
          y0: message.diff.y,
          x1: message.diff.x + message.diff.width,
          y1: message.diff.y + message.diff.height,
        });
        break;
      case 'replaceMask':
        this.cancelGesture();
        this.mask.data.set(message.mask);
        this.markMask({ x0: 0, y0: 0, x1: this.width, y1: this.height });
        this.setStatus(message.reason);
        break;
      case 'suggestion':
        this.suggestion = message.suggestion;
        this.redrawSuggestion();
        break;
      case 'settings':
        // A changed opacity or tolerance setting is the person's newer word: it replaces what a slider chose.
        if (message.settings.maskOpacity !== this.settings.maskOpacity) this.state.opacityChosen = false;
        if (message.settings.wandTolerance !== this.settings.wandTolerance) this.state.toleranceChosen = false;
        this.applySettings(message.settings);
        break;
      case 'saved':
        this.setStatus(`Saved ${message.maskFile}`);
        break;
      case 'clickResult':
        if (this.click.result(message.seq, message.candidates, message.answer, message.fromSuggestion === true))
          this.redrawClick();
        break;
      case 'clickState':
        this.clickState = message.click;
        if (message.click.state === 'error' || message.click.state === 'unavailable') this.click.waiting = false;
        this.redrawClick();
        break;
      default:
        assertNever(message);
    }
  }

  private init(
    width: number,
    height: number,
    rgba: Uint8Array,
    mask: Uint8Array,
    settings: EditorSettings,
    fileName: string,
  ): void {
    this.width = width;
    this.height = height;
    this.rgba = rgba;
    this.mask = { width, height, data: mask };
    this.imageLayer = layer(width, height);
    this.imageLayer.ctx.putImageData(
      new ImageData(new Uint8ClampedArray(rgba.buffer as ArrayBuffer, rgba.byteOffset, rgba.byteLength), width, height),
      0,
      0,
    );
    this.maskLayer = layer(width, height);
    this.suggestionLayer = layer(width, height);
    this.clickLayer = layer(width, height);
    this.root.dataset.image = fileName;
    this.applySettings(settings);
    this.resize();
    if (!this.state.view) this.fit();
    else this.setView(this.state.view);
    this.root.dataset.ready = 'true';
    this.redrawSuggestion();
  }

  private applySettings(settings: EditorSettings): void {
    this.settings = settings;
    if (!this.state.opacityChosen) this.state.opacity = settings.maskOpacity;
    if (!this.state.toleranceChosen) this.state.tolerance = settings.wandTolerance;
    this.root.dataset.opacity = String(this.state.opacity);
    this.root.dataset.tolerance = String(this.state.tolerance);
    this.lut = colourTable(settings.classes);
    if (!settings.classes.some((c) => c.index === this.state.activeClass))
      this.state.activeClass = settings.classes.find((c) => c.index > 0)?.index ?? 1;
    this.buildToolbar();
    this.markMask({ x0: 0, y0: 0, x1: this.width, y1: this.height });
    this.redrawSuggestion();
  }

  // ---- toolbar ----

  private buildToolbar(): void {
    const s = this.state;
    renderToolbar(this.toolbar, this.palette, s, this.settings.classes, {
      setTool: (t) => this.setTool(t),
      setBrushSize: (v) => this.setBrushSize(v),
      setTolerance: (v) => {
        s.tolerance = v;
        s.toleranceChosen = true;
        this.root.dataset.tolerance = String(v);
        this.saveState();
      },
      setOpacity: (v) => {
        s.opacity = v;
        s.opacityChosen = true;
        this.root.dataset.opacity = String(v);
        this.saveState();
        this.requestFrame();
      },
      toggle: (key) => this.toggle(key),
      setClass: (index) => this.setClass(index),
      post: (m) => this.host.post(m),
      fit: () => this.fit(),
      actualSize: () => this.actualSize(),
      focus: () => this.canvas.focus({ preventScroll: true }),
    });
    this.root.dataset.tool = s.tool;
    this.redrawClickInfo();
    this.root.dataset.brushSize = String(s.brushSize);
    this.root.dataset.activeClass = String(s.activeClass);
  }

  private setTool(tool: Tool): void {
    this.cancelGesture();
    if (tool !== 'click') this.clearClick();
    this.state.tool = tool;
    this.saveState();
    this.buildToolbar();
    this.requestFrame();
  }

  private setClass(index: number): void {
    this.state.activeClass = index;
    this.saveState();
    this.buildToolbar();
  }

  private setBrushSize(size: number): void {
    this.state.brushSize = Math.max(1, Math.min(200, Math.round(size)));
    this.saveState();
    this.buildToolbar();
    this.requestFrame();
  }

  private toggle(key: LayerToggle): void {
    this.state[key] = !this.state[key];
    this.saveState();
    this.buildToolbar();
    if (key === 'showConfidence') this.redrawSuggestion();
    this.requestFrame();
  }

  private setStatus(text: string): void {
    this.status.textContent = text;
  }

  private saveState(): void {
    this.state.view = this.view;
    this.host.setState(this.state);
  }

  // ---- view ----

  private resize(): void {
    const stage = this.canvas.parentElement!;
    const dpr = window.devicePixelRatio || 1;
    const w = stage.clientWidth;
    const h = stage.clientHeight;
    this.canvas.style.width = `${w}px`;
    this.canvas.style.height = `${h}px`;
    this.canvas.width = Math.max(1, Math.round(w * dpr));
    this.canvas.height = Math.max(1, Math.round(h * dpr));
    this.requestFrame();
  }

  private setView(view: Viewport): void {
    this.view = view;
    this.root.dataset.scale = String(view.scale);
    this.root.dataset.offset = `${view.offsetX},${view.offsetY}`;
    this.saveState();
    this.requestFrame();
  }

  fit(): void {
    if (!this.width) return;
    const stage = this.canvas.parentElement!;
    this.setView(fitViewport(this.width, this.height, stage.clientWidth, stage.clientHeight));
  }

  actualSize(): void {
    if (!this.width) return;
    const stage = this.canvas.parentElement!;
    this.setView(actualSizeViewport(this.width, this.height, stage.clientWidth, stage.clientHeight));
  }

  private requestFrame(): void {
    if (this.frameRequested) return;
    this.frameRequested = true;
    requestAnimationFrame(() => {
      this.frameRequested = false;
      this.render();
    });
  }

  private markMask(box: Box): void {
    growBox(
      this.dirtyMask,
      Math.max(0, box.x0),
      Math.max(0, box.y0),
      Math.min(this.width, box.x1),
      Math.min(this.height, box.y1),
    );
    this.requestFrame();
  }

  private flushMask(): void {
    if (!this.maskLayer || isEmptyBox(this.dirtyMask)) return;
    const b = { ...this.dirtyMask };
    const px = maskPixels(this.mask.data, this.width, b, this.lut);
    this.maskLayer.ctx.putImageData(new ImageData(px, b.x1 - b.x0, b.y1 - b.y0), b.x0, b.y0);
    Object.assign(this.dirtyMask, emptyBox());
  }

  private redrawSuggestion(): void {
    const s = this.suggestion;
    const info = suggestionText(s, this.state.showConfidence);
    this.suggestionInfo.textContent = this.settings.modelNotice ?? info;
    this.root.dataset.suggestion = s.state;
    this.root.dataset.suggestionVersion = s.state === 'ready' ? String(s.modelVersion) : '';
    if (s.state === 'ready' && s !== this.countedSuggestion) {
      this.countedSuggestion = s;
      this.root.dataset.suggestionCount = String(Number(this.root.dataset.suggestionCount ?? '0') + 1);
    }
    if (!this.suggestionLayer) return;
    this.suggestionLayer.ctx.clearRect(0, 0, this.width, this.height);
    if (s.state === 'ready' && s.classMap.length === this.width * this.height) {
      const px = suggestionPixels(
        s.classMap,
        this.width,
        this.height,
        this.lut,
        this.state.showConfidence ? s.confidence : null,
      );
      // (A pre-labelled suggestion has no confidence: it is drawn as usual and the info bar says so.)
      this.suggestionLayer.ctx.putImageData(new ImageData(px, this.width, this.height), 0, 0);
    }
    this.requestFrame();
  }

  private render(): void {
    this.flushMask();
    const dpr = window.devicePixelRatio || 1;
    const ctx = this.ctx;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, this.canvas.width, this.canvas.height);
    if (!this.imageLayer || !this.maskLayer || !this.suggestionLayer) return;
    const v = this.view;
    ctx.setTransform(v.scale * dpr, 0, 0, v.scale * dpr, v.offsetX * dpr, v.offsetY * dpr);
    // Pixel-exact at any zoom: nearest-neighbour, no smoothing of image or labels.
    ctx.imageSmoothingEnabled = false;
    if (this.state.showImage) ctx.drawImage(this.imageLayer.canvas, 0, 0);
    if (this.state.showMask) {
      ctx.globalAlpha = this.state.opacity;
      ctx.drawImage(this.maskLayer.canvas, 0, 0);
      ctx.globalAlpha = 1;
    }
    if (this.state.showSuggestion) ctx.drawImage(this.suggestionLayer.canvas, 0, 0);
    if (this.clickLayer && this.click.candidate) ctx.drawImage(this.clickLayer.canvas, 0, 0);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.strokeStyle = 'rgba(128,128,128,0.8)';
    ctx.lineWidth = 1;
    ctx.strokeRect(v.offsetX - 0.5, v.offsetY - 0.5, this.width * v.scale + 1, this.height * v.scale + 1);
    this.renderOverlay(ctx);
  }

  private renderOverlay(ctx: CanvasRenderingContext2D): void {
    const v = this.view;
    const colour = this.settings.classes.find((c) => c.index === this.state.activeClass)?.color ?? '#ffffff';
    if (this.polygon.length > 0) {
      ctx.beginPath();
      this.polygon.forEach((p, i) => {
        const sx = p.x * v.scale + v.offsetX;
        const sy = p.y * v.scale + v.offsetY;
        if (i === 0) ctx.moveTo(sx, sy);
        else ctx.lineTo(sx, sy);
      });
      if (this.pointer) ctx.lineTo(this.pointer.x * v.scale + v.offsetX, this.pointer.y * v.scale + v.offsetY);
      ctx.strokeStyle = colour;
      ctx.lineWidth = 2;
      ctx.stroke();
    }
    if (this.state.tool === 'click') drawClickMarks(ctx, this.view, this.click, this.clickPress);
    if (this.pointer && (this.state.tool === 'brush' || this.state.tool === 'eraser')) {
      // The brush preview: the exact disc the brush paints, centred under the cursor.
      ctx.beginPath();
      ctx.arc(
        this.pointer.x * v.scale + v.offsetX,
        this.pointer.y * v.scale + v.offsetY,
        Math.max(0.5, this.state.brushSize / 2) * v.scale,
        0,
        Math.PI * 2,
      );
      ctx.strokeStyle = this.state.tool === 'eraser' ? '#ffffff' : colour;
      ctx.lineWidth = 1.5;
      ctx.stroke();
    }
  }

  // ---- input ----

  private local(e: { clientX: number; clientY: number }): { sx: number; sy: number } {
    const r = this.canvas.getBoundingClientRect();
    return { sx: e.clientX - r.left, sy: e.clientY - r.top };
  }

  private imagePoint(e: { clientX: number; clientY: number }): Point {
    const { sx, sy } = this.local(e);
    return screenToImage(this.view, sx, sy);
  }

  private bindInput(stage: HTMLElement): void {
    const c = this.canvas;
    c.addEventListener('pointerdown', (e) => this.onPointerDown(e));
    c.addEventListener('pointermove', (e) => this.onPointerMove(e));
    c.addEventListener('pointerup', (e) => this.onPointerUp(e));
    c.addEventListener('pointercancel', () => this.cancelGesture());
    c.addEventListener('pointerleave', () => {
      this.pointer = null;
      this.requestFrame();
    });
    c.addEventListener('dblclick', () => {
      if (this.state.tool === 'polygon') this.closePolygon();
    });
    c.addEventListener('contextmenu', (e) => e.preventDefault());
    stage.addEventListener(
      'wheel',
      (e) => {
        e.preventDefault();
        const { sx, sy } = this.local(e);
        if (e.ctrlKey || !e.shiftKey) this.setView(zoomAt(this.view, Math.exp(-e.deltaY * 0.0015), sx, sy));
        else this.setView(panBy(this.view, -e.deltaY, 0));
      },
      { passive: false },
    );
    window.addEventListener('keydown', (e) => this.onKeyDown(e));
    window.addEventListener('keyup', (e) => {
      if (e.key === ' ') this.spaceDown = false;
    });
  }

  private onPointerDown(e: PointerEvent): void {
    this.canvas.focus({ preventScroll: true });
    if (e.button === 1 || (e.button === 0 && this.spaceDown)) {
      this.panning = { x: e.clientX, y: e.clientY, pointerId: e.pointerId };
      this.canvas.setPointerCapture(e.pointerId);
      e.preventDefault();
      return;
    }
    const clickTool = this.state.tool === 'click';
    if ((e.button !== 0 && !(clickTool && e.button === 2)) || !this.width) return;
    const p = this.imagePoint(e);
    if (e.altKey) {
      this.host.post({ type: 'accept', seed: { x: Math.floor(p.x), y: Math.floor(p.y) } });
      return;
    }
    const tool = this.state.tool;
    if (tool === 'brush' || tool === 'eraser') {
      this.canvas.setPointerCapture(e.pointerId);
      const value = tool === 'eraser' ? 0 : this.state.activeClass;
      this.stroke = {
        before: { ...this.mask, data: this.mask.data.slice() },
        box: emptyBox(),
        last: p,
        label: tool === 'eraser' ? 'Erase' : 'Paint',
        value,
      };
      paintSegment(this.mask, p, p, this.state.brushSize, value, this.stroke.box);
      this.markMask(this.stroke.box);
    } else if (tool === 'polygon') {
      this.canvas.setPointerCapture(e.pointerId);
      this.polygon.push(p);
      this.lassoDragging = true;
      this.requestFrame();
    } else if (tool === 'click') {
      this.canvas.setPointerCapture(e.pointerId);
      const { sx, sy } = this.local(e);
      this.clickPress = {
        start: p,
        sx,
        sy,
        current: p,
        moved: false,
        negative: e.shiftKey || e.button === 2,
        refine: e.ctrlKey || e.metaKey,
      };
    } else if (tool === 'wand') {
      if (p.x < 0 || p.y < 0 || p.x >= this.width || p.y >= this.height) return;
      const before = { ...this.mask, data: this.mask.data.slice() };
      const sel = colourRegion(this.rgba, 4, this.width, this.height, p, this.state.tolerance);
      const box = emptyBox();
      paintSelection(this.mask, sel, this.state.activeClass, box);
      this.commit(before, box, 'Fill');
    } else {
      assertNever(tool);
    }
  }

  private onPointerMove(e: PointerEvent): void {
    if (this.panning) {
      this.setView(panBy(this.view, e.clientX - this.panning.x, e.clientY - this.panning.y));
      this.panning.x = e.clientX;
      this.panning.y = e.clientY;
      return;
    }
    // Every sample the browser coalesced into this event, so fast strokes drop no input.
    const events = typeof e.getCoalescedEvents === 'function' ? e.getCoalescedEvents() : [];
    const samples = events.length > 0 ? events : [e];
    for (const ev of samples) {
      const p = this.imagePoint(ev);
      if (this.clickPress) {
        const { sx, sy } = this.local(ev);
        this.clickPress.current = p;
        if (Math.hypot(sx - this.clickPress.sx, sy - this.clickPress.sy) >= BOX_DRAG_PX) this.clickPress.moved = true;
      } else if (this.stroke) {
        paintSegment(this.mask, this.stroke.last, p, this.state.brushSize, this.stroke.value, this.stroke.box);
        this.markMask({
          x0: Math.floor(Math.min(this.stroke.last.x, p.x) - this.state.brushSize),
          y0: Math.floor(Math.min(this.stroke.last.y, p.y) - this.state.brushSize),
          x1: Math.ceil(Math.max(this.stroke.last.x, p.x) + this.state.brushSize) + 1,
          y1: Math.ceil(Math.max(this.stroke.last.y, p.y) + this.state.brushSize) + 1,
        });
        this.stroke.last = p;
      } else if (this.lassoDragging && this.polygon.length > 0) {
        const last = this.polygon[this.polygon.length - 1];
        // Dragging with the polygon tool draws a lasso: a vertex every pixel of screen travel.
        if (Math.hypot(p.x - last.x, p.y - last.y) * this.view.scale >= 3) this.polygon.push(p);
      }
    }
    this.pointer = this.imagePoint(e);
    const ix = Math.floor(this.pointer.x);
    const iy = Math.floor(this.pointer.y);
    if (ix >= 0 && iy >= 0 && ix < this.width && iy < this.height) {
      const cls = this.mask.data[iy * this.width + ix];
      const name = this.settings.classes.find((k) => k.index === cls)?.name ?? (cls === 255 ? 'ignore' : String(cls));
      this.setStatus(`${ix}, ${iy}: ${name}`);
    }
    this.requestFrame();
  }

  private onPointerUp(e: PointerEvent): void {
    if (this.panning) {
      this.panning = null;
      return;
    }
    if (this.clickPress) {
      const press = this.clickPress;
      this.clickPress = null;
      const inside = (q: Point): Point => ({
        x: Math.min(this.width, Math.max(0, q.x)),
        y: Math.min(this.height, Math.max(0, q.y)),
      });
      if (press.moved && !press.negative) this.click.setBox(inside(press.start), inside(press.current));
      else if (press.start.x >= 0 && press.start.y >= 0 && press.start.x < this.width && press.start.y < this.height)
        this.click.addPoint({ ...press.start, positive: !press.negative }, press.refine);
      else return;
      this.host.post(this.click.prompt(this.state.activeClass));
      this.redrawClick();
    } else if (this.stroke) {
      const s = this.stroke;
      this.stroke = null;
      this.commit(s.before, s.box, s.label);
    } else if (this.lassoDragging) {
      this.lassoDragging = false;
      // A drag of more than a few vertices is a lasso: it closes on release.
      if (this.polygon.length > 3) this.closePolygon();
    }
    void e;
  }

  private closePolygon(): void {
    const pts = this.polygon;
    this.polygon = [];
    this.lassoDragging = false;
    if (pts.length < 3) {
      this.requestFrame();
      return;
    }
    const before = { ...this.mask, data: this.mask.data.slice() };
    const box = emptyBox();
    fillPolygon(this.mask, pts, this.state.activeClass, box);
    this.commit(before, box, 'Polygon');
  }

  /** Sends the change since `before` inside `box` as one edit, and shows it. */
  private commit(before: MaskImage, box: Box, label: string): void {
    if (isEmptyBox(box)) return;
    const diff: MaskDiff | null = diffMasks(before, this.mask, box);
    this.markMask(box);
    if (!diff) return;
    this.host.post({ type: 'edit', label, diff });
  }

  private cancelGesture(): void {
    if (this.stroke) {
      // An unfinished stroke is undone locally: the host never saw it.
      const s = this.stroke;
      this.stroke = null;
      const d = diffMasks(s.before, this.mask, s.box);
      if (d) applyDiff(this.mask, d, 'before');
      this.markMask(s.box);
    }
    this.polygon = [];
    this.lassoDragging = false;
    this.panning = null;
    this.clickPress = null;
    this.requestFrame();
  }

  private onKeyDown(e: KeyboardEvent): void {
    if (e.target instanceof HTMLInputElement) return;
    if (e.key === ' ') {
      this.spaceDown = true;
      e.preventDefault();
      return;
    }
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const action = keyAction(e.key, this.state.tool, this.polygon.length > 0, this.click.candidate !== null);
    if (!action) return;
    e.preventDefault();
    switch (action.kind) {
      case 'tool':
        this.setTool(action.tool);
        break;
      case 'brushSize': {
        const size = this.state.brushSize;
        if (action.grow) this.setBrushSize(size >= 10 ? size * 1.25 : size + 1);
        else this.setBrushSize(size > 10 ? size * 0.8 : size - 1);
        break;
      }
      case 'class': {
        const c = this.settings.classes.filter((x) => x.index > 0)[action.nth - 1];
        if (c) this.setClass(c.index);
        break;
      }
      case 'accept':
        this.host.post({ type: 'accept' });
        break;
      case 'reject':
        this.host.post({ type: 'reject' });
        break;
      case 'fit':
        this.fit();
        break;
      case 'actualSize':
        this.actualSize();
        break;
      case 'toggle':
        this.toggle(action.layer);
        break;
      case 'zoom':
        this.zoomCentre(action.factor);
        break;
      case 'closePolygon':
        this.closePolygon();
        break;
      case 'cancel':
        this.cancelGesture();
        this.clearClick();
        break;
      case 'acceptClick':
        this.acceptClick();
        break;
      case 'nextCandidate':
        this.click.nextCandidate();
        this.redrawClick();
        break;
      case 'dropVertex':
        this.polygon.pop();
        this.requestFrame();
        break;
      default:
        assertNever(action);
    }
  }

  // ---- click segmentation ----

  private clearClick(): void {
    if (!this.click.active && !this.click.candidate) return;
    this.click.clear();
    this.redrawClick();
  }

  /** Paints the shown candidate with the active class: one undoable edit. */
  private acceptClick(): void {
    const c = this.click.candidate;
    if (!c || c.mask.length !== this.width * this.height) return;
    const before = { ...this.mask, data: this.mask.data.slice() };
    const box = emptyBox();
    paintCandidate(this.mask, c.mask, this.state.activeClass, box);
    this.commit(before, box, 'Click segment');
    this.click.clear();
    this.redrawClick();
  }

  private redrawClick(): void {
    const c = this.click.candidate;
    this.root.dataset.clickCandidates = String(this.click.candidates.length);
    this.root.dataset.clickSeq = String(this.click.seq);
    if (this.clickLayer) {
      this.clickLayer.ctx.clearRect(0, 0, this.width, this.height);
      if (c && c.mask.length === this.width * this.height) {
        const map = candidateClassMap(c.mask, this.state.activeClass);
        const px = suggestionPixels(map, this.width, this.height, this.lut, null);
        this.clickLayer.ctx.putImageData(new ImageData(px, this.width, this.height), 0, 0);
      }
    }
    this.redrawClickInfo();
    this.requestFrame();
  }

  private redrawClickInfo(): void {
    const s = this.clickState;
    this.root.dataset.click = s.state;
    this.clickInfo.hidden = this.state.tool !== 'click';
    this.clickInfo.textContent =
      s.state === 'unavailable'
        ? s.reason
        : s.state === 'error'
          ? `Click segmentation failed: ${s.message}`
          : s.state === 'preparing' && !this.click.active && s.message
            ? s.message
            : this.click.describe();
    this.clickInfo.title = this.clickInfo.textContent;
  }

  private zoomCentre(factor: number): void {
    const stage = this.canvas.parentElement!;
    this.setView(zoomAt(this.view, factor, stage.clientWidth / 2, stage.clientHeight / 2));
  }
}
