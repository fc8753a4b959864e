// Where a document stands in its edits: each edit gets an id and remembers the one before it, so the document
// is dirty exactly when the current edit is not the saved one (undoing back to the saved edit makes it clean
// again). Pure: VS Code holds the undo stack itself and calls back into the edits.

export interface EditRecord {
  id: number;
  previous: number;
}

export class EditHistory {
  private nextId = 1;
  private current = 0;
  private saved = 0;

  /** A new edit on top of the current one. */
  push(): EditRecord {
    const edit = { id: this.nextId++, previous: this.current };
    this.current = edit.id;
    return edit;
  }

  /** The edit was undone: its predecessor is current. */
  undone(edit: EditRecord): void {
    this.current = edit.previous;
  }

  /** The edit was redone: it is current again. */
  redone(edit: EditRecord): void {
    this.current = edit.id;
  }

  /** What is current is what is on disk now. */
  markSaved(): void {
    this.saved = this.current;
  }

  get dirty(): boolean {
    return this.current !== this.saved;
  }
}
