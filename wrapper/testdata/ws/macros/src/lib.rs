use proc_macro::TokenStream;
use proc_macro2::{TokenStream as TokenStream2, TokenTree};
use quote::{format_ident, quote};

/// Derives `fn name() -> &'static str` returning the type's name (a unit
/// or plain struct: the identifier after `struct`).
#[proc_macro_derive(Named)]
pub fn derive_named(input: TokenStream) -> TokenStream {
    let tokens: TokenStream2 = input.into();
    let mut after_struct = false;
    let mut name = String::new();
    for tt in tokens {
        if let TokenTree::Ident(id) = tt {
            if after_struct {
                name = id.to_string();
                break;
            }
            after_struct = id == "struct";
        }
    }
    let ident = format_ident!("{}", name);
    let out = quote! {
        impl #ident { pub fn name() -> &'static str { #name } }
    };
    out.into()
}
