#!/usr/bin/env python3
"""Count C# method lengths (signature line .. closing brace, inclusive) under given roots.
Strips comments and string/char literals before brace matching."""
import re, sys, os

KEYWORDS_NOT_METHOD = {'if','for','foreach','while','switch','catch','using','lock','fixed','else','do','try','finally','checked','unchecked','unsafe','return','new','get','set','init','add','remove'}
TYPE_KW = re.compile(r'\b(class|struct|interface|enum|record|namespace)\b')

def strip(src):
    out=[];i=0;n=len(src)
    while i<n:
        c=src[i]
        if src.startswith('//',i):
            j=src.find('\n',i); j=n if j<0 else j; out.append(' '*(j-i)); i=j; continue
        if src.startswith('/*',i):
            j=src.find('*/',i+2); j=n if j<0 else j+2
            out.append(''.join(ch if ch=='\n' else ' ' for ch in src[i:j])); i=j; continue
        if src.startswith('@"',i) or src.startswith('$@"',i) or src.startswith('@$"',i):
            k=src.find('"',i)+1; j=k
            while j<n:
                if src[j]=='"':
                    if j+1<n and src[j+1]=='"': j+=2; continue
                    break
                j+=1
            out.append(''.join(ch if ch=='\n' else ' ' for ch in src[i:j+1])); i=j+1; continue
        if src.startswith('"""',i):
            j=src.find('"""',i+3); j=n if j<0 else j+3
            out.append(''.join(ch if ch=='\n' else ' ' for ch in src[i:j])); i=j; continue
        if c=='"' or (c=='$' and i+1<n and src[i+1]=='"'):
            j=i+ (2 if c=='$' else 1)
            while j<n and src[j]!='"':
                if src[j]=='\\': j+=1
                j+=1
            out.append(' '*(j+1-i)); i=j+1; continue
        if c=="'":
            m=re.match(r"'(\\.|[^'\\])[^']*'",src[i:i+10])
            if m: out.append(' '*len(m.group(0))); i+=len(m.group(0)); continue
        out.append(c); i+=1
    return ''.join(out)

def methods(path):
    src=strip(open(path,encoding='utf-8-sig').read())
    lines=src.split('\n')
    res=[]; stack=[]
    # position -> line
    line_of=[]; ln=1
    for ch in src:
        line_of.append(ln)
        if ch=='\n': ln+=1
    last_stmt_end=0
    for i,ch in enumerate(src):
        if ch=='{':
            header=src[last_stmt_end:i]
            h=' '.join(header.split())
            while h.startswith('['):
                d=0
                for q,cc in enumerate(h):
                    if cc=='[': d+=1
                    elif cc==']':
                        d-=1
                        if d==0: break
                h=h[q+1:].strip()
            kind=None
            if h and not TYPE_KW.search(re.sub(r'\(.*','',h)) and not h.endswith('=') and not h.endswith('=>'):
                first=re.match(r'[A-Za-z_]+',h)
                fw=first.group(0) if first else ''
                if '(' in h and fw not in KEYWORDS_NOT_METHOD and not re.search(r'=>\s*$',h) and not re.search(r'\bnew\b[^()]*\(.*\)\s*$',h) and '=' not in h.split('(')[0]:
                    MODS={'public','private','protected','internal','static','async','override','virtual','sealed','unsafe','extern','partial','readonly','abstract','new'}
                    kind='?'
                    for m in re.finditer(r'([A-Za-z_][A-Za-z0-9_]*)\s*(<[^()]*>)?\s*\(',h):
                        if m.group(1) not in MODS: kind=m.group(1); break
            # find header start line (first non-space char after last_stmt_end)
            k=last_stmt_end
            while k<i and src[k].isspace(): k+=1
            stack.append((kind,line_of[k] if k<i else line_of[i]))
            last_stmt_end=i+1
        elif ch=='}':
            if stack:
                kind,start=stack.pop()
                if kind and kind not in KEYWORDS_NOT_METHOD:
                    res.append((line_of[i]-start+1,kind,start))
            last_stmt_end=i+1
        elif ch==';':
            last_stmt_end=i+1
        elif ch in ']' and False:
            pass
    return res

limit=int(os.environ.get('LIMIT','60'))
rows=[];files=0
for root in sys.argv[1:]:
    for dp,_,fs in os.walk(root):
        if '/obj' in dp or '/bin' in dp: continue
        for f in fs:
            if f.endswith('.cs'):
                files+=1
                p=os.path.join(dp,f)
                for n,name,start in methods(p):
                    rows.append((n,p,name,start))
rows.sort(reverse=True)
print(f"files: {files}, methods: {len(rows)}")
over=[r for r in rows if r[0]>limit]
print(f"methods over {limit} lines: {len(over)}")
for n,p,name,start in rows[:int(os.environ.get('TOP','10'))]:
    print(f"{n:4d}  {p}:{start}  {name}{'  <-- over' if n>limit else ''}")
