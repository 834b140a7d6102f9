/// <reference path="./rocksdb.d.ts" />
import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import Module, { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join, sep } from 'node:path'
import type { RocksDBFactory } from 'rocksdb'

let factory: RocksDBFactory | undefined

/**
 * The npm `rocksdb` factory, loaded on first use.
 *
 * Why not a plain `import`: the linux-x64 prebuild of rocksdb 5.2.1 was compiled with the old
 * libstdc++ string ABI, and Node >= 20.12 official binaries export weak `std::__detail::_Scanner<char>`
 * instantiations built with the new one. The dynamic linker binds the addon's calls to Node's
 * copies, whose object layout differs, and loading aborts with `std::bad_alloc` (Level/rocksdb#228,
 * nodejs/node#52436); its install script then falls back to compiling RocksDB from source, which
 * takes hours. So the workspace skips that script, and this loader marks those few symbols
 * "protected" in a cached copy of the prebuild, making the addon call its own instantiations.
 * Everything else (and any locally compiled build) loads unchanged.
 */
export function loadRocksDB(): RocksDBFactory {
  if (factory) return factory
  const require = createRequire(import.meta.url)
  const pkgJson = require.resolve('rocksdb/package.json')
  const pkgDir = dirname(pkgJson)
  const pkgRequire = createRequire(pkgJson)
  const gypBuild = pkgRequire('node-gyp-build') as { path(dir: string): string }
  const native = gypBuild.path(pkgDir)
  if (native.includes(`${sep}prebuilds${sep}linux-`)) {
    const patched = patchedPrebuild(native)
    if (patched) {
      const addon = { exports: {} as unknown }
      process.dlopen(addon, patched)
      // rocksdb loads its addon through `binding.js`; seeding the module cache hands it ours.
      const bindingPath = join(pkgDir, 'binding.js')
      const m = new Module(bindingPath)
      m.filename = bindingPath
      m.loaded = true
      m.exports = addon.exports
      pkgRequire.cache[bindingPath] = m
    }
  }
  factory = pkgRequire('rocksdb') as RocksDBFactory
  return factory
}

const SCANNER = '_ZNSt8__detail8_ScannerIcE'

/** A copy of the prebuild with its regex scanner symbols bound locally, or undefined if it needs none. */
function patchedPrebuild(file: string): string | undefined {
  const elf = readFileSync(file)
  const hash = createHash('sha256').update(elf).digest('hex').slice(0, 16)
  const dir = process.env.MEPHISTO_ROCKSDB_BINDING_DIR ?? join(tmpdir(), 'mephisto-rocksdb')
  const out = join(dir, `rocksdb-${hash}.node`)
  if (existsSync(out)) return out
  if (protectSymbols(elf, (name) => name.startsWith(SCANNER)) === 0) return undefined
  mkdirSync(dir, { recursive: true })
  // Write then rename: parallel workers (vitest forks, several apps) may race to create it.
  const tmp = `${out}.${process.pid}.tmp`
  writeFileSync(tmp, elf)
  renameSync(tmp, out)
  return out
}

/**
 * Sets STV_PROTECTED on the defined dynamic symbols `match` selects, in place, in a 64-bit
 * little-endian ELF image. glibc resolves references to a protected symbol inside the object
 * that defines it, without looking at the executable first. Returns how many it changed.
 */
export function protectSymbols(elf: Buffer, match: (name: string) => boolean): number {
  if (elf.readUInt32BE(0) !== 0x7f454c46 || elf[4] !== 2 || elf[5] !== 1) return 0
  const shoff = Number(elf.readBigUInt64LE(0x28))
  const shentsize = elf.readUInt16LE(0x3a)
  const shnum = elf.readUInt16LE(0x3c)
  const section = (
    i: number,
  ): { type: number; offset: number; size: number; link: number; entsize: number } => {
    const h = shoff + i * shentsize
    return {
      type: elf.readUInt32LE(h + 4),
      offset: Number(elf.readBigUInt64LE(h + 24)),
      size: Number(elf.readBigUInt64LE(h + 32)),
      link: elf.readUInt32LE(h + 40),
      entsize: Number(elf.readBigUInt64LE(h + 56)),
    }
  }
  const SHT_DYNSYM = 11
  const STV_PROTECTED = 3
  let changed = 0
  for (let i = 0; i < shnum; i++) {
    const dynsym = section(i)
    if (dynsym.type !== SHT_DYNSYM || dynsym.entsize === 0) continue
    const strtab = section(dynsym.link)
    for (let s = dynsym.offset; s + dynsym.entsize <= dynsym.offset + dynsym.size; s += dynsym.entsize) {
      const shndx = elf.readUInt16LE(s + 6)
      if (shndx === 0) continue
      const nameAt = strtab.offset + elf.readUInt32LE(s)
      const name = elf.toString('latin1', nameAt, elf.indexOf(0, nameAt))
      if (!match(name)) continue
      const other = elf[s + 5]!
      if ((other & 3) === STV_PROTECTED) continue
      elf[s + 5] = (other & ~3) | STV_PROTECTED
      changed++
    }
  }
  return changed
}
