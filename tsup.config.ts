import { defineConfig } from 'tsup';

export default defineConfig({
  entry: { index: 'src/index.ts', 'internals/index': 'src/internals.ts', 'testing/index': 'src/testing/index.ts' },
  format: ['esm', 'cjs'],
  // Members marked @internal (shared between the classes of one module) stay out of the shipped types.
  dts: { compilerOptions: { stripInternal: true } },
  sourcemap: true,
  clean: true,
  target: 'node20',
  // Shared chunks: `quorumkv` and `quorumkv/testing` use the same classes, so
  // `instanceof KvError` holds across both entry points.
  splitting: true,
  // The optional storage engines (native code) are loaded by LevelStorage/LmdbStorage at open(), never bundled.
  external: ['classic-level', 'lmdb'],
  treeshake: true,
});
