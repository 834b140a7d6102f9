// Types of scripts/layers.mjs, for the TypeScript tests that import it.

export interface Import {
  specifier: string
  typeOnly: boolean
}

/** A source file and its imports; `path` is repo-relative, '/'-separated. */
export interface SourceFile {
  path: string
  imports: Import[]
}

export interface Violation {
  file: string
  specifier: string
  rule: string
}

export const LAYERS: Readonly<Record<string, number>>
export const MODEL: readonly string[]
export const MODEL_MAY_IMPORT: readonly string[]
export const CORE: string

export function parseImports(source: string): Import[]
export function isChecked(path: string): boolean
export function readGraph(root: string): SourceFile[]
export function checkLayers(files: readonly SourceFile[]): {
  violations: Violation[]
  files: number
  edges: number
}
export function formatViolation(v: Violation): string
