/** Text imports (`import page from "x.md" with { type: "text" }`): Bun embeds them. */
declare module "*.md" {
  const text: string;
  export default text;
}
