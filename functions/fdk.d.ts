// Types for the part of @fnproject/fdk we use (the package ships none).
declare module '@fnproject/fdk' {
  export interface Context {
    readonly callID: string | null;
    readonly deadline: Date | null;
  }
  export function handle(
    handler: (input: Buffer, ctx: Context) => Promise<unknown>,
    options: { inputMode: 'buffer' | 'string' },
  ): () => void;
}
